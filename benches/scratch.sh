# Sourced by the benchmark scripts: a scratch directory and a scratch database of `$backend`
# (sqlite or postgres), named after `$1` (e.g. `load`). Sets `scratch`, `db`, `pg` and `url`;
# `drop_scratch` removes both (call it from the script's own EXIT trap).
scratch=$(mktemp -d "/tmp/mall-$1.XXXXXX")
db=mall_$1_$$
pg="-h 127.0.0.1 -U postgres"
case "$backend" in
    sqlite) url="sqlite://$scratch/mall.db" ;;
    postgres)
        psql $pg -qc "CREATE DATABASE $db"
        url="postgres://postgres@127.0.0.1:5432/$db"
        ;;
    *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac
drop_scratch() {
    [ "$backend" = postgres ] && psql $pg -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -rf "$scratch"
}
