# shellcheck shell=bash
# shellcheck disable=SC2034  # variables used by the scripts that source this file
# Core of scripts/ad-dc: configuration, packages, TLS, provisioning, process control, schema, env.
# Sourced by scripts/ad-dc (and by the helpers in this directory); expects PROJECT_ROOT, HELPER_DIR.

REALM=EXAMPLE.TEST
NETBIOS_DOMAIN=EXAMPLE
BASE_DN='DC=example,DC=test'
DC_HOST=DC1
DC_FQDN=dc1.example.test
BIND_DN="CN=Administrator,CN=Users,$BASE_DN"
SCHEMA_LDIF=$HELPER_DIR/exchange-schema.ldif
PACKAGES=(samba samba-ad-dc samba-ad-provision ldb-tools ldap-utils python3-ldb python3-samba openssl util-linux)

AD_HOME=$(mkdir -p "${AD_DC_HOME:-$PROJECT_ROOT/.ad-dc}" && cd "${AD_DC_HOME:-$PROJECT_ROOT/.ad-dc}" && pwd -P)
DATA_DIR=$AD_HOME/domain          # the live domain: private/, state/, cache/, lock/ + admin-password
PRISTINE_DIR=$AD_HOME/pristine    # copy of DATA_DIR right after provision + schema
SNAPSHOT_DIR=$AD_HOME/snapshots
TLS_DIR=$AD_HOME/tls
RUN_DIR=$AD_HOME/run              # samba pid dir and what we know about the running instance
LOG_DIR=$AD_HOME/log
CONF=$AD_HOME/smb.conf
ENV_FILE=$AD_HOME/env
PW_FILE=$DATA_DIR/admin-password  # travels with the data (pristine, snapshots): it must match sam.ldb
# Debian's python3 carries the samba/ldb bindings; the helpers need only the standard library.
PYTHON=/usr/bin/python3
[[ -x $PYTHON ]] || PYTHON=python3

log() { printf 'ad-dc: %s\n' "$*" >&2; }
die() {
    printf 'ad-dc: error: %s\n' "$*" >&2
    exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

lock_home() {
    exec 9>>"$AD_HOME/lock"
    if ! flock -n 9; then
        log "waiting for another ad-dc command on $AD_HOME"
        flock -w "${AD_DC_LOCK_TIMEOUT:-1800}" 9 || die "timed out waiting for the lock $AD_HOME/lock"
    fi
}

# The address: explicit AD_DC_ADDR, else what this home used last, else 127.0.0.1.
wanted_addr() {
    local addr=${AD_DC_ADDR:-}
    if [[ -z $addr && -f $AD_HOME/addr ]]; then addr=$(cat "$AD_HOME/addr"); fi
    addr=${addr:-127.0.0.1}
    [[ $addr =~ ^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
        die "AD_DC_ADDR must be a 127.0.0.0/8 address, got '$addr'"
    local octet
    for octet in "${BASH_REMATCH[@]:1}"; do ((octet <= 255)) || die "bad address '$addr'"; done
    echo "$addr"
}

wanted_fsync() {
    case ${AD_DC_FSYNC:-0} in
        1 | yes | true) echo 1 ;;
        *) echo 0 ;;
    esac
}

# The database backend a new domain is provisioned with: Samba's default TDB, or LMDB (mdb),
# which large directories need (TDB caps a partition at 4 GB, ~340,000 users of the seed, and
# re-maps its whole file after every write). Fixed at provisioning: the home records it.
wanted_backend() {
    case ${AD_DC_BACKEND:-tdb} in
        tdb) echo tdb ;;
        mdb | lmdb) echo mdb ;;
        *) die "AD_DC_BACKEND must be tdb or mdb, got '$AD_DC_BACKEND'" ;;
    esac
}

# What a domain directory (live, pristine, template) was provisioned with.
backend_of() {
    cat "$1/backend-store" 2>/dev/null || echo tdb
}

# ---------------------------------------------------------------------------------------- packages

missing_packages() {
    local pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || echo "$pkg"
    done
}

ensure_packages() {
    local missing
    missing=$(missing_packages)
    [[ -z $missing ]] && return 0
    [[ $(id -u) -eq 0 ]] || die "packages missing ($(echo "$missing" | tr '\n' ' ')) and not root"
    # One installer at a time machine-wide: parallel test processes may each start an instance.
    local lock_dir=/run/lock
    [[ -d $lock_dir ]] || lock_dir=/tmp
    exec 8>>"$lock_dir/writeback-ad-dc-install.lock"
    flock -w 900 8 || die "timed out waiting for another ad-dc package install"
    missing=$(missing_packages)
    if [[ -n $missing ]]; then
        local t0
        t0=$(now)
        log "installing: $(echo "$missing" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        install_with_policy_rc $missing
        log "packages installed in $(since "$t0") s"
    fi
    exec 8>&-
}

POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_SAVED=/usr/sbin/policy-rc.d.ad-dc-saved

restore_policy_rc() {
    rm -f -- "$POLICY_RC"
    if [[ -e $POLICY_RC_SAVED ]]; then mv -- "$POLICY_RC_SAVED" "$POLICY_RC"; fi
}

# apt must not start smbd/nmbd/winbind/samba-ad-dc as system services: a policy-rc.d that exits 101
# forbids it; any policy-rc.d already there is put back afterwards, also if we are interrupted.
install_with_policy_rc() {
    [[ -e $POLICY_RC_SAVED ]] &&
        die "$POLICY_RC_SAVED exists (an interrupted install?): move it back to $POLICY_RC by hand"
    if [[ -e $POLICY_RC ]]; then mv -- "$POLICY_RC" "$POLICY_RC_SAVED"; fi
    trap 'restore_policy_rc' EXIT
    trap 'restore_policy_rc; exit 130' INT TERM
    printf '#!/bin/sh\n# written by scripts/ad-dc during a package install\nexit 101\n' >"$POLICY_RC"
    chmod 0755 "$POLICY_RC"
    local rc=0 apt_log=$AD_HOME/tmp/apt.log
    mkdir -p "$AD_HOME/tmp"
    (
        export DEBIAN_FRONTEND=noninteractive
        apt-get -q -o DPkg::Lock::Timeout=600 update &&
            apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef \
                -o Dpkg::Options::=--force-confold install --no-install-recommends "$@"
    ) >"$apt_log" 2>&1 || rc=$?
    restore_policy_rc
    trap - EXIT INT TERM
    ((rc == 0)) || {
        tail -n 15 "$apt_log" >&2
        die "apt-get failed (rc $rc, log $apt_log)"
    }
}

# --------------------------------------------------------------------------------------------- TLS

# Own CA + server certificate whose SAN covers every name a client may use; Samba's self-made
# certificate has no SAN, so validating clients (rustls) reject it.
ensure_tls() {
    local addr=$1
    mkdir -p "$TLS_DIR"
    chmod 0755 "$TLS_DIR"  # ca.pem readable by test processes; keys are 0600
    if [[ ! -f $TLS_DIR/ca.pem || ! -f $TLS_DIR/ca.key ]]; then
        (
            umask 077
            openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" -days 3650 -sha256 \
                -subj "/O=writeback test bed/CN=writeback ad-dc test CA $(date +%Y%m%d%H%M%S)" \
                -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" \
                -addext "subjectKeyIdentifier=hash" 2>/dev/null
        ) || die "openssl could not create the CA"
        chmod 0644 "$TLS_DIR/ca.pem"
        rm -f "$TLS_DIR/server.pem"
    fi
    if [[ -f $TLS_DIR/server.pem && $(cat "$TLS_DIR/server.addr" 2>/dev/null) == "$addr" ]]; then
        return 0
    fi
    local ext
    ext=$(mktemp)
    cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=IP:$addr,IP:127.0.0.1,IP:::1,DNS:localhost,DNS:$DC_FQDN
EOF
    (
        umask 077
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" \
            -subj "/O=writeback test bed/CN=$DC_FQDN" 2>/dev/null &&
            openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
                -CAcreateserial -out "$TLS_DIR/server.pem" -days 825 -sha256 -extfile "$ext" 2>/dev/null
    ) || {
        rm -f "$ext"
        die "openssl could not create the server certificate"
    }
    rm -f "$ext" "$TLS_DIR/server.csr"
    chmod 0600 "$TLS_DIR/server.key" "$TLS_DIR/ca.key"
    chmod 0644 "$TLS_DIR/server.pem"
    echo "$addr" >"$TLS_DIR/server.addr"
}

# ------------------------------------------------------------------------------------- smb.conf

# Generated on every start from the home's paths, so a domain directory can be copied between homes.
write_smb_conf() {
    local addr=$1 fsync=$2 nosync=no
    # The test mode: TDB_NO_FSYNC (start_samba) covers the TDB files, ldb:nosync the LMDB ones.
    [[ $fsync == 1 ]] || nosync=yes
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    cat >"$CONF.tmp" <<EOF
# Generated by scripts/ad-dc on every start; edits are lost.
[global]
	netbios name = $DC_HOST
	realm = $REALM
	workgroup = $NETBIOS_DOMAIN
	server role = active directory domain controller
	server services = ldap
	interfaces = $addr/8
	bind interfaces only = yes
	private dir = $DATA_DIR/private
	binddns dir = $DATA_DIR/bind-dns
	state directory = $DATA_DIR/state
	cache directory = $DATA_DIR/cache
	lock directory = $DATA_DIR/lock
	pid directory = $RUN_DIR
	ncalrpc dir = $RUN_DIR/ncalrpc
	log file = $LOG_DIR/samba.log
	max log size = 10000
	log level = 1
	# simple bind on plain 389 for labs; LDAPS and StartTLS work regardless
	ldap server require strong auth = no
	dsdb:schema update allowed = true
	tls enabled = yes
	tls certfile = $TLS_DIR/server.pem
	tls keyfile = $TLS_DIR/server.key
	tls cafile = $TLS_DIR/ca.pem
	ldb:nosync = $nosync
EOF
    mv -f "$CONF.tmp" "$CONF"
}

# ------------------------------------------------------------------------------------- provision

gen_password() {
    local pw
    while :; do
        # No early-closing pipe (SIGPIPE under pipefail): read a fixed amount, then filter.
        pw=$(head -c 512 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
        pw=Wb${pw:0:26}
        ((${#pw} == 28)) || continue
        [[ $pw =~ [a-z] && $pw =~ [A-Z] && $pw =~ [0-9] ]] && break
    done
    printf '%s' "$pw"
}

provision_domain() {
    local t0 backend backend_args=()
    t0=$(now)
    backend=$(wanted_backend)
    # The map size is an upper bound (the file grows as it fills); Samba's default 8 GB would
    # stop near 600,000 users.
    if [[ $backend == mdb ]]; then
        backend_args=(--backend-store=mdb "--backend-store-size=${AD_DC_MDB_SIZE:-32Gb}")
    fi
    # Provision into a scratch directory and move it in place only when complete, so a failed
    # provision never leaves a half-made domain that a later start would try to run.
    local target=$AD_HOME/tmp/provision
    rm -rf -- "$target"
    mkdir -p "$target"
    chmod 0700 "$target"
    (
        umask 077
        gen_password >"$target/admin-password"
    )
    # An empty --configfile: otherwise provision copies settings (log paths...) from /etc/samba.
    local empty_conf=$AD_HOME/tmp/empty.conf out=$LOG_DIR/provision.log
    : >"$empty_conf"
    mkdir -p "$LOG_DIR"
    log "provisioning $REALM into $DATA_DIR (backend $backend)"
    if ! samba-tool domain provision --configfile="$empty_conf" --targetdir="$target" \
        --realm="$REALM" --domain="$NETBIOS_DOMAIN" --server-role=dc --dns-backend=NONE \
        --use-rfc2307 --host-name="$DC_HOST" --adminpass="$(cat "$target/admin-password")" \
        "${backend_args[@]}" >"$out" 2>&1; then
        tail -n 20 "$out" >&2
        die "samba-tool domain provision failed (log: $out)"
    fi
    # The generated smb.conf holds absolute paths; ours is written on every start instead.
    rm -rf -- "${target:?}/etc" "$empty_conf" "$DATA_DIR"
    echo "$backend" >"$target/backend-store"
    mv -- "$target" "$DATA_DIR"
    log "provisioned in $(since "$t0") s"
}

# ------------------------------------------------------------------------------ process control

# Fields of /proc/PID/stat after the command name: 1=state 2=ppid 3=pgrp 20=starttime.
proc_field() {
    local stat fields
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    read -r -a fields <<<"${stat##*) }"
    echo "${fields[$(($2 - 1))]}"
}
proc_state() { proc_field "$1" 1; }

# Alive = exists and is not a zombie (in this sandbox an exited process may never be reaped and
# still passes kill -0).
pid_alive() {
    local state
    state=$(proc_state "$1") || return 1
    [[ $state != Z && $state != X ]]
}

# PID of the samba we started for this home, if it is running. We record "PID starttime" (stat
# field 22) when it starts: the pair cannot be reused by another process, and samba rewrites its
# command line ("samba: root process") so that cannot identify it.
running_pid() {
    local pid start
    read -r pid start 2>/dev/null <"$RUN_DIR/dc.pid" || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    pid_alive "$pid" || return 1
    [[ $(proc_field "$pid" 20) == "$start" ]] || return 1
    echo "$pid"
}

# samba -D writes its pid file into our pid directory; adopt that process as ours.
adopt_samba_pid() {
    local pid
    pid=$(cat "$RUN_DIR/samba.pid" 2>/dev/null) || return 1
    pid=${pid//[!0-9]/}
    [[ -n $pid ]] && pid_alive "$pid" || return 1
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */samba ]] || return 1
    echo "$pid $(proc_field "$pid" 20)" >"$RUN_DIR/dc.pid"
    echo "$pid"
}

group_alive() {
    local pgid=$1 stat_file stat fields
    for stat_file in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$stat_file" || continue
        read -r -a fields <<<"${stat##*) }"
        [[ ${fields[2]} == "$pgid" && ${fields[0]} != Z && ${fields[0]} != X ]] && return 0
    done
    return 1
}

stop_samba() {
    local pid pgid deadline
    pid=$(running_pid) || {
        rm -f "$RUN_DIR/samba.pid" "$RUN_DIR/dc.pid"
        return 0
    }
    pgid=$(proc_field "$pid" 3)
    log "stopping samba (pid $pid)"
    if [[ $pgid == "$pid" ]]; then kill -TERM -- "-$pgid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
    deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        if [[ $pgid == "$pid" ]]; then group_alive "$pgid" || break; else pid_alive "$pid" || break; fi
        sleep 0.05
    done
    if pid_alive "$pid" || { [[ $pgid == "$pid" ]] && group_alive "$pgid"; }; then
        log "samba did not stop on TERM, killing"
        if [[ $pgid == "$pid" ]]; then kill -KILL -- "-$pgid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
        sleep 0.2
    fi
    rm -f "$RUN_DIR/samba.pid" "$RUN_DIR/dc.pid" "$RUN_DIR/fsync"
}

# Run an OpenLDAP client tool validating the DC with our CA. LDAPCONF=/dev/null: the machine's
# /etc/ldap/ldap.conf must not change results (LDAPNOINIT would also drop the LDAPTLS_* variables).
ldap_tool() {
    env LDAPCONF=/dev/null "LDAPTLS_CACERT=$TLS_DIR/ca.pem" LDAPTLS_REQCERT=demand "$@"
}

rootdse_answers() {
    ldap_tool ldapsearch -LLL -x -H "ldaps://$1" -o nettimeout=2 -b '' -s base \
        '(objectClass=*)' namingContexts >/dev/null 2>&1
}

start_samba() {
    local addr=$1 fsync=$2 t0 pid="" deadline
    t0=$(now)
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    rm -f "$RUN_DIR/samba.pid" "$RUN_DIR/dc.pid"
    write_smb_conf "$addr" "$fsync"
    local env_args=(env)
    if [[ $fsync == 1 ]]; then env_args+=(-u TDB_NO_FSYNC); else env_args+=(TDB_NO_FSYNC=1); fi
    local log_mark
    log_mark=0
    [[ -f $LOG_DIR/samba.log ]] && log_mark=$(wc -l <"$LOG_DIR/samba.log")
    # 8>&- 9>&-: the daemon must not inherit our lock descriptors, or it would hold the home
    # lock (and the install lock) for as long as it runs.
    "${env_args[@]}" samba -D -s "$CONF" </dev/null >>"$LOG_DIR/samba.stdout" 2>&1 8>&- 9>&- ||
        die "samba -D failed: $(tail -n 5 "$LOG_DIR/samba.stdout")"
    local pid_deadline=$((SECONDS + 15))
    deadline=$((SECONDS + ${AD_DC_START_TIMEOUT:-60}))
    while ((SECONDS < deadline)); do
        if [[ -z $pid ]]; then
            pid=$(adopt_samba_pid) || pid=""
            # No pid file this long after samba -D returned: it exited during startup.
            [[ -z $pid ]] && ((SECONDS > pid_deadline)) && break
        elif ! pid_alive "$pid"; then
            break
        fi
        if [[ -n $pid ]] && rootdse_answers "$addr"; then
            echo "$addr" >"$RUN_DIR/addr"
            echo "$fsync" >"$RUN_DIR/fsync"
            log "samba running (pid $pid, ldaps://$addr, fsync=$fsync), ready in $(since "$t0") s"
            return 0
        fi
        sleep 0.1
    done
    log "samba did not answer on ldaps://$addr; end of $LOG_DIR/samba.log:"
    tail -n "+$((log_mark + 1))" "$LOG_DIR/samba.log" 2>/dev/null | tail -n 30 >&2 || true
    # Do not leave a half-started daemon behind: find it (its pid file may come late) and stop it.
    local tries=0
    while [[ -z $pid ]] && ((tries++ < 20)); do
        pid=$(adopt_samba_pid) || { pid="" && sleep 0.1; }
    done
    [[ -n $pid ]] && stop_samba
    die "samba did not become ready within ${AD_DC_START_TIMEOUT:-60} s"
}

# ---------------------------------------------------------------------------------- data copies

copy_dir() {
    local src=$1 dst=$2
    rm -rf -- "$dst.tmp"
    cp -a --reflink=auto -- "$src" "$dst.tmp"
    rm -rf -- "$dst"
    mv -- "$dst.tmp" "$dst"
}

restore_dir() {
    local src=$1 dst=$2 t0
    t0=$(now)
    copy_dir "$src" "$dst"
    log "restored $(basename "$src") into $dst in $(since "$t0") s"
}

# --------------------------------------------------------------------------------------- schema

schema_version() { sha256sum "$SCHEMA_LDIF" | cut -c1-16; }
record_schema_version() { schema_version >"$DATA_DIR/schema-version"; }
schema_current() { [[ $(cat "$DATA_DIR/schema-version" 2>/dev/null) == "$(schema_version)" ]]; }

# -B: no __pycache__ inside the source tree.
helper() { "$PYTHON" -B "$HELPER_DIR/adtool.py" "$@"; }

# helper_ldap SUBCOMMAND ADDR ARGS...: a helper subcommand that talks to the DC as Administrator.
helper_ldap() {
    local sub=$1 addr=$2
    shift 2
    helper "$sub" --url "ldaps://$addr" --ca "$TLS_DIR/ca.pem" --bind-dn "$BIND_DN" \
        --password-file "$PW_FILE" "$@"
}

apply_schema() {
    local addr=$1 t0
    t0=$(now)
    helper_ldap apply-schema "$addr" --ldif "$SCHEMA_LDIF" || die "schema extension failed"
    helper_ldap verify-schema "$addr" --base-dn "$BASE_DN" --ldif "$SCHEMA_LDIF" ||
        die "schema verification failed"
    log "Exchange schema extension applied and verified in $(since "$t0") s"
}

# ------------------------------------------------------------------------------------------ env

write_env() {
    local addr=$1
    (
        umask 077
        {
            echo "LDAP_URL=ldap://$addr"
            echo "LDAPS_URL=ldaps://$addr"
            echo "BASE_DN=$BASE_DN"
            echo "BIND_DN=$BIND_DN"
            echo "BIND_PASSWORD=$(cat "$PW_FILE")"
            echo "CA_CERT=$TLS_DIR/ca.pem"
        } >"$ENV_FILE.tmp"
    )
    chmod 0600 "$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# ------------------------------------------------------------------------------------------ start

# Start (or reuse) the DC; the caller holds the home lock.
start_locked() {
    local t_all addr fsync pid
    t_all=$(now)
    addr=$(wanted_addr)
    fsync=$(wanted_fsync)
    ensure_packages
    if pid=$(running_pid); then
        local run_addr run_fsync
        run_addr=$(cat "$RUN_DIR/addr" 2>/dev/null || true)
        run_fsync=$(cat "$RUN_DIR/fsync" 2>/dev/null || true)
        # Reuse unless the caller explicitly asked for another address or fsync mode.
        if [[ (-n ${AD_DC_ADDR:-} && $run_addr != "$addr") || (-n ${AD_DC_FSYNC:-} && $run_fsync != "$fsync") ]]; then
            log "running with addr=$run_addr fsync=$run_fsync; restarting for addr=$addr fsync=$fsync"
            stop_samba
        elif rootdse_answers "$run_addr"; then
            write_env "$run_addr"
            log "already running (pid $pid, ldaps://$run_addr)"
            return 0
        else
            log "samba pid $pid does not answer; restarting it"
            stop_samba
        fi
    fi
    check_addr_free "$addr"
    echo "$addr" >"$AD_HOME/addr"
    ensure_tls "$addr"

    local fresh=0 dir
    # A home keeps the backend it was provisioned with; asking for another one is a mistake to
    # say, not to paper over (its snapshots are of that backend too).
    if [[ -n ${AD_DC_BACKEND:-} ]]; then
        for dir in "$DATA_DIR" "$PRISTINE_DIR"; do
            if [[ -f $dir/private/sam.ldb && $(backend_of "$dir") != "$(wanted_backend)" ]]; then
                die "$dir was provisioned with backend $(backend_of "$dir"), AD_DC_BACKEND asks for $(wanted_backend): use another AD_DC_HOME"
            fi
        done
    fi
    if [[ ! -f $DATA_DIR/private/sam.ldb || ! -s $PW_FILE ]]; then
        [[ -f $PRISTINE_DIR/private/sam.ldb ]] || adopt_template
        if [[ -f $PRISTINE_DIR/private/sam.ldb ]]; then
            restore_dir "$PRISTINE_DIR" "$DATA_DIR"
        else
            provision_domain
            fresh=1
        fi
    fi
    start_samba "$addr" "$fsync"
    if ((fresh)) || ! schema_current; then
        apply_schema "$addr"
        record_schema_version
        # The pristine copy is taken with samba stopped so the tdb files are consistent.
        if ((fresh)) || [[ ! -f $PRISTINE_DIR/schema-version ]] || ! cmp -s "$PRISTINE_DIR/schema-version" "$DATA_DIR/schema-version"; then
            local t0
            t0=$(now)
            stop_samba
            copy_dir "$DATA_DIR" "$PRISTINE_DIR"
            log "pristine copy saved in $PRISTINE_DIR ($(since "$t0") s)"
            start_samba "$addr" "$fsync"
        fi
    fi
    write_env "$addr"
    log "start done in $(since "$t_all") s; env: $ENV_FILE"
}

# A new home (tests with their own AD_DC_HOME) starts from the default home's pristine domain
# instead of provisioning again: same domain SID and Administrator password, nothing else shared.
# AD_DC_TEMPLATE=/path/to/pristine picks another one, AD_DC_TEMPLATE=none disables this.
adopt_template() {
    local template=${AD_DC_TEMPLATE:-$PROJECT_ROOT/.ad-dc/pristine}
    [[ $template != none && -f $template/private/sam.ldb && -s $template/admin-password ]] || return 0
    [[ $(cd "$template" && pwd -P) != "$PRISTINE_DIR" ]] || return 0
    [[ $(cat "$template/schema-version" 2>/dev/null) == "$(schema_version)" ]] || return 0
    [[ $(backend_of "$template") == "$(wanted_backend)" ]] || return 0
    # The template's owner may replace it at any moment (rename): a failed copy just means provisioning.
    if cp -a --reflink=auto -- "$template" "$PRISTINE_DIR.tmp" 2>/dev/null; then
        rm -rf -- "$PRISTINE_DIR"
        mv -- "$PRISTINE_DIR.tmp" "$PRISTINE_DIR"
        log "pristine domain copied from the template $template"
    else
        rm -rf -- "$PRISTINE_DIR.tmp"
    fi
}

# Ports are fixed (389/636/3268/3269): another DC (or anything) on the address would make samba
# fail with a confusing error, so say it plainly.
check_addr_free() {
    local addr=$1
    if (exec 3<>"/dev/tcp/$addr/636") 2>/dev/null; then
        die "something already listens on $addr:636 (another DC? use AD_DC_ADDR=127.0.0.N for a second instance)"
    fi
}
