"""LDIF reading/writing and a thin wrapper over the OpenLDAP command-line tools.

Standard library only: the helpers run with Debian's /usr/bin/python3, which has no LDAP module,
and the ldap-utils binaries are installed by scripts/ad-dc anyway.
"""

import base64
import os
import subprocess
from dataclasses import dataclass, field


class LdapError(Exception):
    def __init__(self, rc, message):
        super().__init__(f"LDAP rc {rc}: {message}")
        self.rc = rc
        self.message = message


@dataclass
class Entry:
    dn: str
    # attribute name (lower case) -> values as bytes, in server order
    attrs: dict = field(default_factory=dict)

    def values(self, name):
        return self.attrs.get(name.lower(), [])

    def text(self, name):
        return [v.decode("utf-8", "replace") for v in self.values(name)]

    def first(self, name, default=None):
        vals = self.text(name)
        return vals[0] if vals else default


# ------------------------------------------------------------------------------------------- LDIF


def _unfold(text):
    lines = []
    for raw in text.splitlines():
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


def split_records(text):
    """LDIF text -> list of records, each a list of unfolded, non-comment lines."""
    records, current = [], []
    for line in _unfold(text):
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                records.append(current)
                current = []
            continue
        current.append(line)
    if current:
        records.append(current)
    return records


def parse_line(line):
    """'name: value' / 'name:: base64' -> (name, bytes). A bare 'dn:' gives b''."""
    name, sep, rest = line.partition(":")
    if not sep:
        raise ValueError(f"not an LDIF line: {line[:80]!r}")
    if rest.startswith(":"):
        return name, base64.b64decode(rest[1:].strip())
    if rest.startswith("<"):
        raise ValueError(f"URL values are not supported: {line[:80]!r}")
    return name, rest[1:].encode("utf-8") if rest.startswith(" ") else rest.encode("utf-8")


def parse_entries(text):
    """Search output (content records) -> list of Entry; search references are skipped."""
    entries = []
    for record in split_records(text):
        name, value = parse_line(record[0])
        if name.lower() != "dn":
            continue
        entry = Entry(dn=value.decode("utf-8"))
        for line in record[1:]:
            attr, val = parse_line(line)
            entry.attrs.setdefault(attr.lower(), []).append(val)
        entries.append(entry)
    return entries


def _safe(value):
    if not value:
        return True
    if value[0] in (" ", ":", "<") or value[-1] == " ":
        return False
    return all(0x20 <= ord(c) <= 0x7E for c in value)


def ldif_line(name, value):
    if isinstance(value, bytes):
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return f"{name}:: {base64.b64encode(value).decode('ascii')}"
        value = text
    value = str(value)
    if _safe(value):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def entry_ldif(dn, attrs):
    """attrs: list of (name, value) pairs -> one content record."""
    lines = [ldif_line("dn", dn)]
    lines.extend(ldif_line(n, v) for n, v in attrs)
    return "\n".join(lines) + "\n\n"


def escape_filter_value(value):
    """RFC 4515 escaping for a value placed in a search filter."""
    out = []
    for ch in value:
        if ch in "*()\\\0":
            out.append("\\%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


# ------------------------------------------------------------------------------------ LDAP tools


class Ldap:
    """Runs ldapsearch/ldapmodify against one DC, validating its certificate with our CA."""

    def __init__(self, url, ca, bind_dn, password_file):
        self.url = url
        self.bind_dn = bind_dn
        self.password_file = password_file
        self.env = dict(os.environ)
        # LDAPCONF=/dev/null: /etc/ldap/ldap.conf must not change results (LDAPNOINIT would also
        # make libldap ignore the LDAPTLS_* variables).
        self.env.pop("LDAPNOINIT", None)
        self.env.update(LDAPCONF="/dev/null", LDAPTLS_CACERT=ca, LDAPTLS_REQCERT="demand")

    def _common(self):
        return ["-x", "-H", self.url, "-D", self.bind_dn, "-y", self.password_file,
                "-o", "nettimeout=10"]

    def search(self, base, scope, filt="(objectClass=*)", attrs=(), page_size=1000):
        cmd = ["ldapsearch", "-LLL", "-o", "ldif-wrap=no", *self._common(), "-b", base, "-s", scope]
        if page_size:
            cmd += ["-E", f"pr={page_size}/noprompt"]
        cmd += [filt, *attrs]
        proc = subprocess.run(cmd, env=self.env, capture_output=True)
        if proc.returncode == 32:  # noSuchObject: the base does not exist
            return []
        if proc.returncode not in (0, 10):  # 10: referral, reported for subtree searches at the root
            raise LdapError(proc.returncode, _diag(proc))
        return parse_entries(proc.stdout.decode("utf-8", "replace"))

    def exists(self, dn):
        return bool(self.search(dn, "base", attrs=["1.1"], page_size=0))

    def modify(self, ldif, add_default=False, continue_on_error=False):
        """Apply change records; returns (rc, diagnostic). rc 0 means every record applied."""
        cmd = ["ldapmodify", *self._common()]
        if add_default:
            cmd.append("-a")
        if continue_on_error:
            cmd.append("-c")
        proc = subprocess.run(cmd, env=self.env, input=ldif.encode("utf-8"), capture_output=True)
        return proc.returncode, _diag(proc)

    def modify_or_raise(self, ldif, add_default=False):
        rc, diag = self.modify(ldif, add_default=add_default)
        if rc != 0:
            raise LdapError(rc, diag)


def _diag(proc):
    """The last lines ldapsearch/ldapmodify wrote to stderr (they carry the server's message)."""
    lines = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
    return " | ".join(lines[-3:]) if lines else f"exit {proc.returncode}"


def add_connection_args(parser):
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--bind-dn", required=True)
    parser.add_argument("--password-file", required=True)


def connect(args):
    return Ldap(args.url, args.ca, args.bind_dn, args.password_file)
