"""Apply the Exchange schema extension idempotently and prove every attribute is writable on a user."""

import sys

from ldaptool import LdapError, entry_ldif, ldif_line, parse_line, split_records

# ldapmodify result codes that mean "this record was applied before"
ALREADY_EXISTS = 68
VALUE_EXISTS = 20

PROBE_CN = "ad-dc schema probe"


def _record_text(record):
    return "\n".join(record) + "\n\n"


def _describe(record):
    dn = parse_line(record[0])[1].decode("utf-8") or "(rootDSE)"
    kind = next((parse_line(line)[1].decode() for line in record[1:]
                 if line.lower().startswith("changetype:")), "?")
    return f"{kind} {dn}"


def apply_schema(ldap, ldif_path):
    """Apply each record on its own: 'already exists' / 'value exists' count as done."""
    with open(ldif_path, encoding="utf-8") as fh:
        records = split_records(fh.read())
    # Fast path for a fresh domain: the whole file in one connection. If anything was there
    # before, it stops at that record and the record-by-record pass below finishes the job.
    rc, _ = ldap.modify("".join(_record_text(r) for r in records))
    if rc == 0:
        print(f"schema: {len(records)} records applied", file=sys.stderr)
        return
    applied = skipped = 0
    for record in records:
        rc, diag = ldap.modify(_record_text(record))
        if rc == 0:
            applied += 1
        elif rc in (ALREADY_EXISTS, VALUE_EXISTS):
            skipped += 1
        else:
            raise LdapError(rc, f"{_describe(record)}: {diag}")
    print(f"schema: {applied} records applied, {skipped} already present", file=sys.stderr)


def schema_attributes(ldif_path):
    """(lDAPDisplayName, attributeID, single-valued, rangeUpper) of each attribute the LDIF adds."""
    with open(ldif_path, encoding="utf-8") as fh:
        records = split_records(fh.read())
    out = []
    for record in records:
        fields = {}
        for line in record[1:]:
            if line == "-":
                continue
            name, value = parse_line(line)
            fields.setdefault(name.lower(), []).append(value.decode("utf-8"))
        if "attributeschema" not in [v.lower() for v in fields.get("objectclass", [])]:
            continue
        out.append((fields["ldapdisplayname"][0], fields["attributeid"][0],
                    fields["issinglevalued"][0] == "TRUE",
                    int(fields["rangeupper"][0]) if "rangeupper" in fields else None,
                    fields["attributesyntax"][0]))
    return out


def _aux_classes(ldif_path):
    with open(ldif_path, encoding="utf-8") as fh:
        records = split_records(fh.read())
    classes = []
    for record in records:
        for line in record[1:]:
            if line == "-":
                continue
            name, value = parse_line(line)
            if name.lower() == "auxiliaryclass":
                classes.append(value.decode("utf-8"))
    return classes


def _probe_value(ldn, syntax, single, upper):
    """Values at the edge of what the schema allows, so range mistakes show up."""
    if syntax == "2.5.5.8":
        return ["TRUE"]
    if ldn == "msExchRecipientTypeDetails":
        return ["2147483648"]  # RemoteUserMailbox: needs the 64-bit syntax
    if ldn == "msExchRecipientDisplayType":
        return ["-2147483642"]  # synced remote mailbox user: a negative 32-bit value
    if ldn == "msExchRemoteRecipientType":
        return ["4"]
    if syntax in ("2.5.5.9", "2.5.5.16"):
        return ["1"]
    if ldn == "targetAddress":
        return ["SMTP:probe@example.mail.onmicrosoft.com"]
    length = upper or 64
    if single:
        return [("Ä" + ldn)[:1] + "v" * (length - 1)]
    return [("w" * (length - 2)) + "-1", "second value", "dritter Wert ÄÖÜ"]


def verify_schema(ldap, base_dn, ldif_path):
    """Every attribute exists with the intended definition and a user can hold a value of it."""
    schema_dn = f"CN=Schema,CN=Configuration,{base_dn}"
    attrs = schema_attributes(ldif_path)
    problems = []
    found = {e.first("lDAPDisplayName"): e for e in ldap.search(
        schema_dn, "one", "(objectClass=attributeSchema)",
        ["lDAPDisplayName", "attributeID", "isSingleValued", "rangeUpper"])}
    for ldn, oid, single, upper, _syntax in attrs:
        entry = found.get(ldn)
        if entry is None:
            problems.append(f"{ldn}: not in the schema")
            continue
        if entry.first("attributeID") != oid:
            problems.append(f"{ldn}: attributeID {entry.first('attributeID')} (expected {oid})")
        if (entry.first("isSingleValued") == "TRUE") != single:
            problems.append(f"{ldn}: isSingleValued {entry.first('isSingleValued')}")
        if upper is not None and entry.first("rangeUpper") != str(upper):
            problems.append(f"{ldn}: rangeUpper {entry.first('rangeUpper')} (expected {upper})")
    user_class = ldap.search(f"CN=User,{schema_dn}", "base", attrs=["auxiliaryClass"], page_size=0)
    present = set(user_class[0].text("auxiliaryClass")) if user_class else set()
    for aux in _aux_classes(ldif_path):
        if aux not in present:
            problems.append(f"user: auxiliaryClass {aux} missing")
    if not problems:
        problems.extend(_probe_user(ldap, base_dn, attrs))
    for p in problems:
        print(f"schema verification: {p}", file=sys.stderr)
    if problems:
        return False
    print(f"schema: verified {len(attrs)} attributes on a user (write, read back, range and "
          "single-value checks)", file=sys.stderr)
    return True


def _probe_user(ldap, base_dn, attrs):
    dn = f"CN={PROBE_CN},CN=Users,{base_dn}"
    ldap.modify(f"dn: {dn}\nchangetype: delete\n\n")  # leftover of an interrupted run
    content = [("objectClass", "user"), ("sAMAccountName", "adDcSchemaProbe"),
               ("mail", "probe@example.test"),
               ("proxyAddresses", "SMTP:probe@example.test"),
               ("proxyAddresses", "smtp:probe2@example.test")]
    expected = {}
    for ldn, _oid, single, upper, syntax in attrs:
        values = _probe_value(ldn, syntax, single, upper)
        expected[ldn] = values
        content.extend((ldn, v) for v in values)
    problems = []
    try:
        ldap.modify_or_raise(entry_ldif(dn, content), add_default=True)
        got = ldap.search(dn, "base", attrs=list(expected), page_size=0)
        if not got:
            return [f"probe user {dn} not readable after add"]
        for ldn, values in expected.items():
            have = sorted(got[0].text(ldn))
            if have != sorted(values):
                problems.append(f"{ldn}: wrote {len(values)} value(s), read back {have[:3]!r}")
        # One past rangeUpper must be refused, and a single-valued attribute must refuse a second value.
        too_long = "x" * 1025
        rc, _ = ldap.modify(f"dn: {dn}\nchangetype: modify\nreplace: extensionAttribute1\n"
                            f"{ldif_line('extensionAttribute1', too_long)}\n-\n\n")
        if rc == 0:
            problems.append("extensionAttribute1 accepted 1025 characters (rangeUpper not enforced)")
        rc, _ = ldap.modify(f"dn: {dn}\nchangetype: modify\nadd: extensionAttribute2\n"
                            "extensionAttribute2: second\n-\n\n")
        if rc == 0:
            problems.append("extensionAttribute2 accepted a second value (not single-valued)")
    except LdapError as err:
        problems.append(f"probe user: {err}")
    finally:
        ldap.modify(f"dn: {dn}\nchangetype: delete\n\n")
    return problems
