"""LDIF for scripts/bench: a writeback plan as one ldapmodify file, and normalised dumps of the
managed attributes so two ways of writing the same changes can be compared."""

import base64
import json
import os

# The attributes writeback reads for every user: copied from crates/writeback-ad/src/entry.rs
# (`IDENTITY_ATTRIBUTES` + `read_attributes()`, which appends `ManagedAttribute::ALL` from
# crates/writeback-core/src/attribute.rs). Keep in step with those two files.
IDENTITY_ATTRIBUTES = [
    "objectGUID", "objectSid", "mS-DS-ConsistencyGuid", "objectClass", "adminCount",
    "isCriticalSystemObject", "uSNChanged", "uSNCreated", "sAMAccountName",
]
MANAGED_ATTRIBUTES = [f"extensionAttribute{i}" for i in range(1, 16)] + [
    f"msExchExtensionCustomAttribute{i}" for i in range(1, 6)] + [
    "proxyAddresses", "mail", "msExchRecipientTypeDetails", "msExchRecipientDisplayType",
    "msExchHideFromAddressLists",
]
READ_ATTRIBUTES = IDENTITY_ATTRIBUTES + MANAGED_ATTRIBUTES
USER_FILTER = "(&(objectCategory=person)(objectClass=user))"

_SAFE_INIT_EXCLUDED = {0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x3C}  # NUL LF CR SPACE : <
_SAFE_EXCLUDED = {0x00, 0x0A, 0x0D}


def is_safe_string(text):
    """RFC 2849 SAFE-STRING (ASCII without NUL/CR/LF, not starting with space, ':' or '<');
    a trailing space is also treated as unsafe, since LDIF readers may strip it."""
    raw = text.encode("utf-8")
    if not raw:
        return True
    if raw[0] in _SAFE_INIT_EXCLUDED or raw[-1] == 0x20:
        return False
    return all(b < 0x80 and b not in _SAFE_EXCLUDED for b in raw)


def ldif_line(name, value):
    if is_safe_string(value):
        return f"{name}: {value}\n" if value else f"{name}:\n"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}\n"


class PlanError(Exception):
    pass


def plan_to_ldif(plan_path, ldif_path):
    """Writes the plan's modifications as one `changetype: modify` record per object, in the
    plan's order, all of an object's changes in that one request. Returns
    (objects, modifications, summary). Fails on an object the plan could not plan (an error,
    no DN): the floor must be exactly what the engine is going to write."""
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    objects = plan.get("objects")
    if not isinstance(objects, list):
        raise PlanError(f"{plan_path}: no 'objects' list (not a `writeback plan --out` file?)")
    n_objects = n_mods = 0
    with open(ldif_path, "w", encoding="ascii", newline="\n") as out:
        for obj in objects:
            changes = obj.get("changes") or []
            if not changes:
                continue
            dn = obj.get("dn")
            if obj.get("error") or not dn:
                raise PlanError(f"plan object {obj.get('cloud_id')} has changes but "
                                f"{'an error: ' + str(obj.get('error')) if obj.get('error') else 'no DN'}")
            out.write(ldif_line("dn", dn))
            out.write("changetype: modify\n")
            for change in changes:
                op, attr, values = change["op"], change["attribute"], change.get("values") or []
                if op not in ("add", "delete", "replace"):
                    raise PlanError(f"{dn}: unknown op {op!r}")
                out.write(f"{op}: {attr}\n")
                for value in values:
                    out.write(ldif_line(attr, value))
                out.write("-\n")
                n_mods += 1
            out.write("\n")
            n_objects += 1
    return n_objects, n_mods, plan.get("summary") or {}


def _decode(line):
    """(name, value) of one unwrapped LDIF line; `name:: base64` decoded."""
    name, _, rest = line.partition(":")
    if rest.startswith(":"):
        return name, base64.b64decode(rest[1:].strip()).decode("utf-8", errors="surrogateescape")
    return name, rest[1:] if rest.startswith(" ") else rest


def iter_entries(stream):
    """Entries of `ldapsearch -LLL -o ldif-wrap=no` output as (dn, [(attr, value), ...])."""
    dn, attrs = None, []
    for raw in stream:
        line = raw.rstrip("\n")
        if not line:
            if dn is not None:
                yield dn, attrs
            dn, attrs = None, []
            continue
        if line.startswith("#"):
            continue
        name, value = _decode(line)
        if name.lower() == "dn":
            dn = value
        else:
            attrs.append((name, value))
    if dn is not None:
        yield dn, attrs


def normalised_line(dn, attrs):
    """One entry as a comparable line: DN, then its attributes by lower-case name with the
    values sorted (multi-valued attributes have no order)."""
    by_attr = {}
    for name, value in attrs:
        by_attr.setdefault(name.lower(), []).append(value)
    body = sorted((name, sorted(values)) for name, values in by_attr.items())
    return json.dumps([dn.lower(), body], ensure_ascii=False, separators=(",", ":"))


def write_dump(stream, path):
    """Normalises a whole search output into `path`, one entry a line, sorted by DN. Returns
    the number of entries."""
    # Sorted by the DN itself (not the JSON text), the order compare_dumps walks in.
    lines = sorted((dn.lower(), normalised_line(dn, attrs)) for dn, attrs in iter_entries(stream))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for _, line in lines:
            f.write(line)
            f.write("\n")
    os.replace(tmp, path)
    return len(lines)


def compare_dumps(path_a, path_b, show=10):
    """Walks two sorted dumps together. Returns (entries compared, mismatch count, the first
    `show` mismatches as (dn, line in a or None, line in b or None))."""
    mismatches, shown, compared = 0, [], 0

    def key(line):
        return json.loads(line)[0] if line else None

    with open(path_a, encoding="utf-8") as fa, open(path_b, encoding="utf-8") as fb:
        a, b = fa.readline(), fb.readline()
        while a or b:
            ka, kb = key(a), key(b)
            compared += 1
            if ka == kb:
                if a != b:
                    mismatches += 1
                    if len(shown) < show:
                        shown.append((ka, a.rstrip("\n"), b.rstrip("\n")))
                a, b = fa.readline(), fb.readline()
            elif kb is None or (ka is not None and ka < kb):
                mismatches += 1
                if len(shown) < show:
                    shown.append((ka, a.rstrip("\n"), None))
                a = fa.readline()
            else:
                mismatches += 1
                if len(shown) < show:
                    shown.append((kb, None, b.rstrip("\n")))
                b = fb.readline()
    return compared, mismatches, shown
