# shellcheck shell=bash
# `scripts/ad-dc seed`: deterministic realistic users, over LDAP or offline (ldbadd on the stopped DC).

# Below this many new users LDAP wins: the offline path pays a DC stop + start (see BENCHMARKS.md).
SEED_OFFLINE_FROM=${AD_DC_SEED_OFFLINE_FROM:-1000}

seed_usage() {
    echo "usage: scripts/ad-dc seed --count N --ou OU [--prefix P] [--method auto|ldap|offline] [--dbcheck]" >&2
    exit 2
}

normalise_ou() {
    local ou=$1 base_lower ou_lower
    [[ $ou == *=* ]] || ou="OU=$ou"
    base_lower=${BASE_DN,,}
    ou_lower=${ou,,}
    [[ $ou_lower == *",$base_lower" ]] || ou="$ou,$BASE_DN"
    echo "$ou"
}

default_prefix() {
    local leaf=${1%%,*}
    leaf=${leaf#*=}
    leaf=$(echo "${leaf,,}" | tr -cd 'a-z0-9' | cut -c1-12)
    [[ $leaf =~ ^[a-z] ]] || leaf="u$leaf"
    echo "${leaf:0:12}"
}

cmd_seed() {
    local count="" ou="" prefix="" method=auto dbcheck=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --count) count=${2:-}; shift 2 || seed_usage ;;
            --count=*) count=${1#*=}; shift ;;
            --ou) ou=${2:-}; shift 2 || seed_usage ;;
            --ou=*) ou=${1#*=}; shift ;;
            --prefix) prefix=${2:-}; shift 2 || seed_usage ;;
            --prefix=*) prefix=${1#*=}; shift ;;
            --method) method=${2:-}; shift 2 || seed_usage ;;
            --method=*) method=${1#*=}; shift ;;
            --dbcheck) dbcheck=1; shift ;;
            *) seed_usage ;;
        esac
    done
    [[ $count =~ ^[1-9][0-9]{0,6}$ ]] || die "--count must be 1..9999999"
    [[ -n $ou ]] || seed_usage
    [[ $method == auto || $method == ldap || $method == offline ]] || die "--method must be auto, ldap or offline"
    ou=$(normalise_ou "$ou")
    [[ -n $prefix ]] || prefix=$(default_prefix "$ou")
    # sAMAccountName = prefix + at least 6 digits, and must stay within 20 characters.
    [[ $prefix =~ ^[a-z][a-z0-9]{0,12}$ ]] || die "--prefix must match [a-z][a-z0-9]{0,12}, got '$prefix'"

    lock_home
    start_locked
    local addr workdir t0 t_plan
    addr=$(cat "$RUN_DIR/addr")
    workdir=$AD_HOME/tmp/seed.$$
    rm -rf -- "$workdir"
    mkdir -p "$workdir"
    # shellcheck disable=SC2064
    trap "rm -rf -- '$workdir'" EXIT

    t0=$(now)
    local plan SEED_EXISTING=0 SEED_TO_ADD=0 SEED_FILES=0 key value
    plan=$(helper_ldap seed-plan "$addr" --base-dn "$BASE_DN" --ou "$ou" --prefix "$prefix" \
        --count "$count" --out-dir "$workdir" --batch-size "${AD_DC_SEED_BATCH:-1000}") || die "seed planning failed"
    while IFS='=' read -r key value; do
        case $key in
            SEED_EXISTING) SEED_EXISTING=$value ;;
            SEED_TO_ADD) SEED_TO_ADD=$value ;;
            SEED_FILES) SEED_FILES=$value ;;
        esac
    done <<<"$plan"
    t_plan=$(since "$t0")
    if ((SEED_TO_ADD == 0 && SEED_FILES == 0)); then
        log "seed: all $count users with prefix '$prefix' already exist in $ou"
        echo "seeded 0 users ($SEED_EXISTING already there) into $ou"
        return 0
    fi
    if [[ $method == auto ]]; then
        if ((SEED_TO_ADD >= SEED_OFFLINE_FROM)); then method=offline; else method=ldap; fi
    fi
    log "seed: adding $SEED_TO_ADD users ($SEED_EXISTING exist) to $ou, prefix '$prefix', method $method (LDIF generated in $t_plan s)"

    local t_apply t_total files
    files=("$workdir"/batch-*.ldif)
    t0=$(now)
    if [[ $method == ldap ]]; then
        local f
        for f in "${files[@]}"; do
            ldap_tool ldapmodify -a -x -H "ldaps://$addr" -D "$BIND_DN" -y "$PW_FILE" \
                -f "$f" >/dev/null 2>"$workdir/err" || die "ldapmodify -a $f failed: $(tail -n 3 "$workdir/err")"
        done
        t_apply=$(since "$t0")
        t_total=$t_apply
    else
        local fsync t_stop t_add
        fsync=$(cat "$RUN_DIR/fsync" 2>/dev/null || wanted_fsync)
        stop_samba
        t_stop=$(now)
        local f ldb_env=(env)
        # Same durability as the DC's mode; without fsync, one sync at the end makes it durable.
        local nosync=()
        [[ $fsync == 1 ]] || { ldb_env+=(TDB_NO_FSYNC=1); nosync=(--nosync); }
        for f in "${files[@]}"; do
            # batch_mode: ldb checks unique indexes once per transaction (per file), the fast path.
            "${ldb_env[@]}" ldbadd --configfile="$CONF" -H "$DATA_DIR/private/sam.ldb" -o batch_mode:1 "${nosync[@]}" "$f" \
                >/dev/null 2>"$workdir/err" || {
                tail -n 5 "$workdir/err" >&2
                start_samba "$addr" "$fsync"
                die "ldbadd $f failed"
            }
        done
        [[ $fsync == 1 ]] || sync -f "$DATA_DIR/private/sam.ldb"
        t_add=$(since "$t_stop")
        if ((dbcheck)); then
            local t_check
            t_check=$(now)
            samba-tool dbcheck --configfile="$CONF" >"$workdir/dbcheck" 2>&1 ||
                die "samba-tool dbcheck found problems: $(tail -n 5 "$workdir/dbcheck")"
            log "seed: samba-tool dbcheck clean ($(tail -n 1 "$workdir/dbcheck")) in $(since "$t_check") s"
        fi
        start_samba "$addr" "$fsync"
        t_apply=$t_add
        t_total=$(since "$t0")
    fi
    local rate
    rate=$(awk -v n="$SEED_TO_ADD" -v t="$t_total" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }')
    log "seed: added $SEED_TO_ADD users by $method in $t_total s ($rate users/s overall; adds alone $t_apply s; LDIF generation $t_plan s)"
    echo "seeded $SEED_TO_ADD users ($SEED_EXISTING already there) into $ou by $method in $t_total s: $rate users/s"
}
