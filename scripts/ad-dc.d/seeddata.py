"""Deterministic, realistic-looking hybrid users for the test domain.

User number i of prefix P is always the same (seeded from "P/i"), so `seed --count 20000` after
`seed --count 1000` adds users 1001..20000 and leaves the first thousand as they were.
"""

import random
import unicodedata

GIVEN_NAMES = """
Anna Ben Clara David Emma Felix Greta Hannah Ivan Jonas Katharina Lukas Marie Noah Olivia Paul
Quentin Rosa Samuel Theresa Ulrich Valentina Wilhelm Xenia Yusuf Zoe Amelia Oliver Isla George
Ava Harry Mia Jack Sophia Leo Lily Oscar Grace Arthur Freya Charlie Ella Thomas Alice Henry
Chloe William Evie James Ruby Mohammed Aisha Omar Fatima Ali Leila Hugo Louise Jules Camille
Lucas Manon Gabriel Chloé Raphaël Léa Nathan Inès Mateo Lucía Martín Sofía Hugo Paula Álvaro
Carmen Giulia Francesco Chiara Alessandro Aurora Lorenzo Björn Åsa Sören Maja Lars Ingrid Jürgen
Gisela Jörg Müge Łukasz Zofia Wojciech Agnieszka Dmitri Olga Sergei Natalia Hiroshi Yuki Wei Mei
Priya Arjun Ananya Rohan Siobhán Seán Niamh Eoin Kofi Ama Chidi Ngozi Mateus Beatriz João Ana
""".split()

SURNAMES = """
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein
Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Werner Krause Lehmann
Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White
Roberts Green Hall Wood Jackson Clarke Martin Bernard Dubois Thomas Robert Richard Petit Durand
Leroy Moreau Simon Laurent Lefèvre Michel García Fernández González Rodríguez López Martínez
Sánchez Pérez Gómez Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Andersson Johansson
Karlsson Nilsson Eriksson Larsson Olsen Hansen Nielsen Jensen Kowalski Nowak Wiśniewski Wójcik
Ivanov Petrov Sidorov Tanaka Suzuki Takahashi Wang Li Zhang Liu Chen Patel Sharma Singh Kumar Gupta
O'Brien O'Connor Murphy Kelly Byrne Ryan Walsh Mensah Okafor Adeyemi Silva Santos Oliveira Souza
de_Vries van_Dijk Bakker Janssen Visser Smit
""".split()

DEPARTMENTS = ["Finance", "Sales", "Marketing", "Engineering", "Operations", "Legal",
               "Human Resources", "Customer Service", "IT", "Research", "Procurement", "Logistics"]
TITLES = ["Analyst", "Engineer", "Manager", "Specialist", "Consultant", "Coordinator", "Director",
          "Assistant", "Team Lead", "Architect", "Accountant", "Administrator"]
EMPLOYEE_TYPES = ["Staff", "Contractor", "Intern", "Temporary", "Partner"]
SITES = ["BER-HQ", "MUC-01", "LON-02", "PAR-01", "MAD-03", "WAW-01", "NYC-05", "SIN-01"]
TAGS = ["team:blue", "team:green", "team:red", "project:atlas", "project:zephyr", "oncall",
        "mentor", "remote", "hybrid", "floor:3", "floor:5", "lang:de", "lang:fr", "lang:en"]

TENANT_ROUTING_DOMAIN = "example.mail.onmicrosoft.com"
LDAP_TRUE = "TRUE"

# Exchange recipient encodings (see /work/shared/reference/exchange-attributes.md):
REMOTE_USER_MAILBOX = ("2147483648", "-2147483642")  # RecipientTypeDetails, RecipientDisplayType
# Remote room mailbox values as Microsoft documents them for directory-only setups
# (msExchRemoteRecipientType 33, msExchRecipientDisplayType -2147481850,
# msExchRecipientTypeDetails 8589934592).
REMOTE_ROOM_MAILBOX = ("8589934592", "-2147481850")
MIGRATED, PROVISION_MAILBOX, ROOM = 4, 1, 32

_TRANSLIT = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "đ": "d",
                           "'": "", " ": ""})


def ascii_token(name):
    """'Łukasz' -> 'lukasz', "O'Brien" -> 'obrien', 'de Vries' -> 'devries'."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def mail_domain(prefix):
    # Two seeds with different prefixes must never share an address (AD would not stop it and the
    # writeback's duplicate checks would then see conflicts nobody planned).
    return "example.test" if prefix == "seed" else f"{prefix}.example.test"


def sam_for(prefix, index):
    return f"{prefix}{index:06d}"


def generate(prefix, count):
    """Yield (index, sAMAccountName, cn, [(attribute, value), ...]) for users 1..count."""
    domain = mail_domain(prefix)
    seen = {}
    seen_short = {}
    for index in range(1, count + 1):
        rng = random.Random(f"{prefix}/{index}")
        given = rng.choice(GIVEN_NAMES)
        surname = rng.choice(SURNAMES).replace("_", " ")
        base_local = f"{ascii_token(given)}.{ascii_token(surname)}"
        n = seen.get(base_local, 0) + 1
        seen[base_local] = n
        local = base_local if n == 1 else f"{base_local}{n}"
        # Counted on its own: Anna and Alice Müller share "amuller" but not "anna.muller", and an
        # address two users share is quarantined by Exchange (and by the emulator's import).
        base_short = f"{ascii_token(given)[:1]}{ascii_token(surname)}"
        m = seen_short.get(base_short, 0) + 1
        seen_short[base_short] = m
        short = base_short if m == 1 else f"{base_short}{m}"
        sam = sam_for(prefix, index)
        display = f"{given} {surname}"
        cn = f"{display} ({sam})"
        primary = f"{local}@{domain}"
        attrs = [("objectClass", "user"), ("sAMAccountName", sam), ("givenName", given),
                 ("sn", surname), ("displayName", display), ("userPrincipalName", primary),
                 ("mail", primary), ("company", "Example Ltd"),
                 ("department", rng.choice(DEPARTMENTS)), ("title", rng.choice(TITLES))]
        proxies = [f"SMTP:{primary}", f"smtp:{short}@{domain}"]
        if rng.random() < 0.5:
            proxies.append(f"smtp:{local}@{TENANT_ROUTING_DOMAIN}")
        if rng.random() < 0.08:
            legacy = "%032x" % rng.getrandbits(128)
            proxies.append("X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)"
                           f"/cn=Recipients/cn={legacy}-{local[:10]}")
        attrs.extend(("proxyAddresses", p) for p in proxies)
        room = rng.random() < 0.03
        type_details, display_type = REMOTE_ROOM_MAILBOX if room else REMOTE_USER_MAILBOX
        remote_type = PROVISION_MAILBOX | ROOM if room else (MIGRATED if rng.random() < 0.7 else PROVISION_MAILBOX)
        attrs += [("mailNickname", local[:64]), ("targetAddress", f"SMTP:{local}@{TENANT_ROUTING_DOMAIN}"),
                  ("msExchRecipientTypeDetails", type_details),
                  ("msExchRecipientDisplayType", display_type),
                  ("msExchRemoteRecipientType", str(remote_type))]
        if rng.random() < 0.7:
            attrs.append(("extensionAttribute1", f"CC-{rng.randrange(1000, 9999)}"))
        if rng.random() < 0.4:
            attrs.append(("extensionAttribute2", rng.choice(EMPLOYEE_TYPES)))
        if rng.random() < 0.2:
            attrs.append(("extensionAttribute5", rng.choice(SITES)))
        if rng.random() < 0.1:
            attrs.append(("extensionAttribute10", "cloud-managed"))
        if rng.random() < 0.05:
            note = " ".join(rng.choice(TAGS) for _ in range(rng.randrange(10, 40)))
            attrs.append(("extensionAttribute15", note[:2048]))
        if rng.random() < 0.1:
            for tag in rng.sample(TAGS, rng.randrange(1, 4)):
                attrs.append(("msExchExtensionCustomAttribute1", tag))
        if rng.random() < 0.03:
            attrs.append(("msExchHideFromAddressLists", LDAP_TRUE))
        if rng.random() < 0.6:
            # What Entra Connect Sync writes as the source anchor: 16 bytes (a GUID).
            attrs.append(("mS-DS-ConsistencyGuid", rng.getrandbits(128).to_bytes(16, "little")))
        yield index, sam, cn, attrs
