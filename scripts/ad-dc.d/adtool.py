#!/usr/bin/env python3
"""Helpers for scripts/ad-dc (schema, seed data, modify-floor change sets). Standard library only."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema  # noqa: E402
import seeddata  # noqa: E402
from ldaptool import LdapError, add_connection_args, connect, entry_ldif, escape_filter_value, ldif_line  # noqa: E402


def ou_chain(ou_dn, base_dn):
    """'OU=A,OU=B,DC=x' -> ['OU=B,DC=x', 'OU=A,OU=B,DC=x'] (parents first), base excluded."""
    if not ou_dn.lower().endswith(base_dn.lower()):
        raise SystemExit(f"{ou_dn} is not under {base_dn}")
    head = ou_dn[: len(ou_dn) - len(base_dn)].rstrip(",")
    parts = [p for p in split_dn(head) if p]
    chain = []
    for i in range(len(parts) - 1, -1, -1):
        chain.append(",".join(parts[i:] + [base_dn]))
    return chain


def split_dn(dn):
    """Split at unescaped commas (RFC 4514)."""
    parts, current, escaped = [], [], False
    for ch in dn:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def index_of(sam, prefix):
    tail = sam[len(prefix):]
    return int(tail) if sam.lower().startswith(prefix.lower()) and tail.isdigit() else None


def cmd_seed_plan(args):
    """Find what exists, write the missing users as LDIF batches, print shell assignments."""
    ldap = connect(args)
    prefix = args.prefix
    # A prefix already used in another OU would collide on sAMAccountName (unique per domain).
    taken = ldap.search(args.base_dn, "sub", f"(sAMAccountName={escape_filter_value(prefix)}*)",
                        ["sAMAccountName"])
    existing = set()
    ou_lower = args.ou.lower()
    for entry in taken:
        idx = index_of(entry.first("sAMAccountName", ""), prefix)
        if idx is None:
            continue
        parent = ",".join(split_dn(entry.dn)[1:])
        if parent.lower() != ou_lower:
            raise SystemExit(f"prefix '{prefix}' is already used by {entry.dn}: pass another --prefix")
        existing.add(idx)
    os.makedirs(args.out_dir, exist_ok=True)
    batch, batch_no, files, to_add = [], 0, [], 0

    def flush():
        nonlocal batch, batch_no
        if not batch:
            return
        batch_no += 1
        path = os.path.join(args.out_dir, f"batch-{batch_no:05d}.ldif")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(batch))
        files.append(path)
        batch = []

    for ou in ou_chain(args.ou, args.base_dn):
        if not ldap.exists(ou):
            name = split_dn(ou)[0].split("=", 1)[1]
            batch.append(entry_ldif(ou, [("objectClass", "organizationalUnit"), ("ou", name)]))
    for index, _sam, cn, attrs in seeddata.generate(prefix, args.count):
        if index in existing:
            continue
        dn = f"CN={escape_rdn(cn)},{args.ou}"
        batch.append(entry_ldif(dn, attrs))
        to_add += 1
        if len(batch) >= args.batch_size:
            flush()
    flush()
    print(f"SEED_EXISTING={sum(1 for i in existing if i <= args.count)}")
    print(f"SEED_TO_ADD={to_add}")
    print(f"SEED_FILES={len(files)}")


def escape_rdn(value):
    """RFC 4514 escaping of an attribute value inside a DN."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (i == 0 and ch in " #") or (i == len(value) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def cmd_floor_ldif(args):
    """One modify record per seeded user, built from the values read now (so deletes hit)."""
    ldap = connect(args)
    entries = ldap.search(args.ou, "one", f"(sAMAccountName={escape_filter_value(args.prefix)}*)",
                          ["sAMAccountName", "extensionAttribute1", "proxyAddresses",
                           "msExchHideFromAddressLists"])
    users = []
    for entry in entries:
        idx = index_of(entry.first("sAMAccountName", ""), args.prefix)
        if idx is not None and idx <= args.count:
            users.append((idx, entry))
    users.sort(key=lambda pair: pair[0])
    if len(users) < args.count:
        raise SystemExit(f"only {len(users)} users with prefix {args.prefix} in {args.ou}, need {args.count}")
    token = args.token or format(int(time.time() * 1000), "x")
    out = []
    for idx, entry in users:
        out.append(modify_record(args.kind, entry, idx, token))
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write("".join(out))
    print(len(out))


def modify_record(kind, entry, idx, token):
    lines = [ldif_line("dn", entry.dn), "changetype: modify"]
    new_value = f"floor-{token}-{idx}"
    if kind == "single":
        lines += ["replace: extensionAttribute1", ldif_line("extensionAttribute1", new_value), "-"]
    elif kind == "guarded":
        # The writeback's optimistic form: delete the value read, add the new one (fails with 16 if
        # someone changed it meanwhile).
        old = entry.first("extensionAttribute1")
        if old is not None:
            lines += ["delete: extensionAttribute1", ldif_line("extensionAttribute1", old), "-"]
        lines += ["add: extensionAttribute1", ldif_line("extensionAttribute1", new_value), "-"]
    elif kind in ("multi", "proxy", "attrs"):
        # multi = attrs + proxy in one request; proxy and attrs exist to see which part costs what.
        if kind != "proxy":
            for n in (2, 3, 4):
                lines += [f"replace: extensionAttribute{n}",
                          ldif_line(f"extensionAttribute{n}", f"{new_value}-{n}"), "-"]
            hidden = entry.first("msExchHideFromAddressLists") == "TRUE"
            lines += ["replace: msExchHideFromAddressLists",
                      f"msExchHideFromAddressLists: {'FALSE' if hidden else 'TRUE'}", "-"]
        if kind == "attrs":
            return "\n".join(lines) + "\n\n"
        proxies = entry.text("proxyAddresses")
        primary = next((p for p in proxies if p.startswith("SMTP:")), None)
        if primary is None:
            raise SystemExit(f"{entry.dn} has no primary SMTP address")
        domain = primary.split("@", 1)[1]
        secondaries = [p for p in proxies if p.startswith("smtp:") and p.endswith("@" + domain)]
        if not secondaries:
            raise SystemExit(f"{entry.dn} has no secondary smtp address to delete")
        # Prefer the alias an earlier floor run added, so repeated runs keep the shape stable.
        victim = next((p for p in secondaries if p.startswith("smtp:floor-")), secondaries[0])
        lines += ["add: proxyAddresses", ldif_line("proxyAddresses", f"smtp:floor-{token}-{idx}@{domain}"), "-",
                  "delete: proxyAddresses", ldif_line("proxyAddresses", victim), "-"]
    else:
        raise SystemExit(f"unknown kind {kind}")
    return "\n".join(lines) + "\n\n"


def main():
    parser = argparse.ArgumentParser(prog="adtool")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("apply-schema")
    add_connection_args(p)
    p.add_argument("--ldif", required=True)

    p = sub.add_parser("verify-schema")
    add_connection_args(p)
    p.add_argument("--ldif", required=True)
    p.add_argument("--base-dn", required=True)

    p = sub.add_parser("seed-plan")
    add_connection_args(p)
    p.add_argument("--base-dn", required=True)
    p.add_argument("--ou", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--batch-size", type=int, default=1000)

    p = sub.add_parser("floor-ldif")
    add_connection_args(p)
    p.add_argument("--ou", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--kind", choices=["single", "guarded", "multi", "proxy", "attrs"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--token", default="")

    args = parser.parse_args()
    try:
        if args.command == "apply-schema":
            schema.apply_schema(connect(args), args.ldif)
        elif args.command == "verify-schema":
            return 0 if schema.verify_schema(connect(args), args.base_dn, args.ldif) else 1
        elif args.command == "seed-plan":
            cmd_seed_plan(args)
        elif args.command == "floor-ldif":
            cmd_floor_ldif(args)
    except LdapError as err:
        print(f"adtool: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
