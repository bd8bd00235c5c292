# Serving at production scale (issue 11), sourced by bench/serving.sh after its own sections
# (same server, database, helpers and $work). Every figure is printed beside its baseline: a
# private decoded copy per backend (neumf.serving_images = off, how 0.4 served) and the plain
# indexed lookup. Models are trained once and kept in the bench database:
#   scale_138k     138k users × 27k items (the issue's 58 MB model)
#   scale_huge     BENCH_HUGE_USERS × BENCH_HUGE_ITEMS, factors 64, tower 256-128-64 (~1 GB)
#   scale_catalog  a ~1M-item catalogue, for exact vs two-stage neumf_recommend
HUGE_USERS=${BENCH_HUGE_USERS:-1100000}; HUGE_ITEMS=${BENCH_HUGE_ITEMS:-200000}
FRESH=${BENCH_FRESH_CONNECTIONS:-30}

train_once() { # model source-sql train-options
  if [ "$(q "SELECT count(*) FROM neumf_models WHERE model = '$1' AND active")" = 0 ]; then
    echo "   training $1 (once; kept in the bench database)"
    q "SELECT neumf_drop('$1', if_exists => true)" >/dev/null
    q "SET neumf.train_threads = $(nproc); SELECT version FROM neumf_train('$1', \$\$$2\$\$, epochs => 1, validation => false, pretrain => false, $3)" >/dev/null
  fi
}
rank10() { echo "SELECT count(*) FROM neumf_rank('$1', 42, ARRAY[1,2,3,4,5,6,7,8,9,10]::int8[], 10)"; }

echo "== 6. production scale: models"
train_once scale_138k "SELECT * FROM neumf_synthetic_interactions(138000, 27000, per_user => 4)" "batch_size => 8192"
train_once scale_catalog "SELECT * FROM neumf_synthetic_interactions(100000, 1050000, per_user => 40, skew => 1)" "batch_size => 65536, learning_rate => 0.005"
train_once scale_huge "SELECT * FROM neumf_synthetic_interactions($HUGE_USERS, $HUGE_ITEMS, per_user => 1, skew => 1)" \
  "factors => 64, layers => ARRAY[256, 128, 64], batch_size => 65536"
for m in ml100k scale_138k scale_catalog scale_huge; do
  read -r n_users n_items stored < <(q "SELECT n_users, n_items, size_bytes FROM neumf_models WHERE model = '$m' AND active" | tr '|' ' ')
  eval "size_$m=$stored users_$m=$n_users items_$m=$n_items"
  echo "   $m: $n_users users × $n_items items, $(ratio "$stored" 1048576 1) MB stored"
done

echo "== 7. first call on a new connection ($FRESH fresh connections each; images built and verified beforehand)"
cluster restart
for m in ml100k scale_138k scale_catalog scale_huge; do q "$(rank10 $m)" >/dev/null; done
read -r lookup_first_p50 lookup_first_p95 < <(first_statement "SELECT score FROM precomputed WHERE user_id = 42 ORDER BY score DESC LIMIT 10" "$FRESH")
for m in ml100k scale_138k scale_catalog scale_huge; do
  read -r p50 p95 < <(first_statement "$(rank10 $m)" "$FRESH")
  # The baseline decodes the whole model per connection: fewer tries for the large ones.
  tries=$FRESH; [ "$(eval echo \$size_$m)" -gt 100000000 ] && tries=3
  read -r b50 b95 < <(first_statement "$(rank10 $m)" "$tries" "-c neumf.serving_images=off")
  eval "first_$m='$p50 $p95' private_$m='$b50 $b95 $tries'"
  echo "   $m: image p50 $p50 ms p95 $p95 ms   vs private copy p50 $b50 ms p95 $b95 ms ($tries tries)"
done
NEUMF_PG_OPTIONS="-c shared_preload_libraries=''" cluster restart
q "$(rank10 scale_huge)" >/dev/null
read -r nopre_p50 nopre_p95 < <(first_statement "$(rank10 scale_huge)" "$FRESH")
cluster restart
q "$(rank10 scale_138k)" >/dev/null

echo "== 8. private memory (USS) of 8 backends after their first neumf_rank on scale_138k"
uss_of() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
pss_of() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
eight_backends() { # options → "uss-growth-list pss-growth-sum-kB"
  local dir; dir=$(mktemp -d "$work/b.XXXX"); local pids=() ub=() pb=()
  for i in 0 1 2 3 4 5 6 7; do
    mkfifo "$dir/in$i"
    PGOPTIONS="$1" psql -X -q -tA <"$dir/in$i" >"$dir/out$i" 2>&1 &
    eval "exec $((20 + i))>\"$dir/in$i\""
    echo "SELECT pg_backend_pid();" >&$((20 + i))
  done
  for i in 0 1 2 3 4 5 6 7; do
    for _ in $(seq 1 100); do [ -s "$dir/out$i" ] && break; sleep 0.05; done
    pids[i]=$(head -1 "$dir/out$i"); ub[i]=$(uss_of "${pids[i]}"); pb[i]=$(pss_of "${pids[i]}")
  done
  for i in 0 1 2 3 4 5 6 7; do
    echo "$(rank10 scale_138k);" >&$((20 + i))
    for _ in $(seq 1 400); do [ "$(wc -l <"$dir/out$i")" -ge 2 ] && break; sleep 0.05; done
  done
  local growth="" max=0 pss_sum=0 g
  for i in 0 1 2 3 4 5 6 7; do
    g=$(( $(uss_of "${pids[i]}") - ub[i] )); growth="$growth $g"; [ "$g" -gt "$max" ] && max=$g
    pss_sum=$(( pss_sum + $(pss_of "${pids[i]}") - pb[i] ))
  done
  for i in 0 1 2 3 4 5 6 7; do eval "exec $((20 + i))>&-"; done
  wait 2>/dev/null || true
  echo "$max $pss_sum$growth"
}
read -r uss_max pss_sum uss_list < <(eight_backends "-c client_min_messages=warning")
read -r puss_max ppss_sum puss_list < <(eight_backends "-c client_min_messages=warning -c neumf.serving_images=off")
image_kb=$(( $(q "SELECT bytes FROM neumf_images() WHERE model = 'scale_138k'") / 1024 ))
echo "   image: max $uss_max kB per backend (each:$uss_list), 8 backends' PSS growth $pss_sum kB, image $image_kb kB"
echo "   private copies: max $puss_max kB per backend (each:$puss_list), PSS growth $ppss_sum kB"

echo "== 9. a new connection per transaction (pgbench -C) on scale_138k"
sed 's/ml100k/scale_138k/; s/random(1, 943)/random(1, 138000)/; s/random(1, 1682)/random(1, 27000)/g' "$here/pgbench_rank.sql" >"$work/rank_138k.sql"
big_c=$(tps -C -f "$work/rank_138k.sql"); big_c_base=$(tps -C -f "$here/pgbench_baseline.sql")
big_c_private=$(PGOPTIONS='-c neumf.serving_images=off' tps -C -f "$work/rank_138k.sql")
echo "   neumf_rank $big_c tps   vs lookup $big_c_base tps ($(ratio "$big_c" "$big_c_base" 3))   vs private copies $big_c_private tps"

echo "== 10. neumf_recommend over the ~1M-item catalogue (1 client, ${SECS}s each)"
latency() { # name sql → p50 ms, calls
  printf '%s\n' "\\set u random(1, $users_scale_catalog)" "$1" >"$work/lat.sql"
  rm -f "$work"/lat_log*
  (cd "$work" && "$PGBENCH" -n -M prepared -c 1 -j 1 -T "$SECS" -l --log-prefix=lat_log -f lat.sql >/dev/null 2>&1)
  cat "$work"/lat_log* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.2f %d\n", a[int((NR+1)/2)]/1000, NR}'
}
read -r exact_p50 exact_n < <(latency "SELECT count(*) FROM neumf_recommend('scale_catalog', :u, 10);")
CANDIDATES=${BENCH_CANDIDATES:-1000}
read -r two_p50 two_n < <(latency "SELECT count(*) FROM neumf_recommend('scale_catalog', :u, 10, candidates => $CANDIDATES);")
recall_rows=$(q "WITH users AS (SELECT (1 + (g * 7919) % $users_scale_catalog)::bigint AS u FROM generate_series(1, 100) g),
  exact AS MATERIALIZED (SELECT u, r.item_id FROM users, neumf_recommend('scale_catalog', u, 10) r)
  SELECT n, round(avg(hits) / 10, 4) FROM (
    SELECT n, u, (SELECT count(*) FROM neumf_recommend('scale_catalog', u, 10, candidates => n) t
                  WHERE t.item_id IN (SELECT item_id FROM exact e WHERE e.u = users.u)) AS hits
    FROM users, unnest(ARRAY[200, 1000, 5000]) n) x GROUP BY n ORDER BY n" | tr '\n' ' ')
echo "   exact p50 $exact_p50 ms ($exact_n calls)   two-stage (candidates => $CANDIDATES) p50 $two_p50 ms ($two_n calls)"
echo "   recall@10 vs exact over 100 users, by candidates (n|recall): $recall_rows"

echo "== 11. through PgBouncer (transaction pooling) vs direct, neumf_rank on ml100k, -M simple"
bouncer_dir=$(mktemp -u -d /tmp/neumf-pgbouncer.XXXXXX); bouncer_port=$((PGPORT + 7))
"$repo/scripts/pgbouncer.sh" start "$bouncer_dir" "$bouncer_port" "$PGPORT" "$CLIENTS"
direct_simple=$("$PGBENCH" -n -M simple -c "$CLIENTS" -j "$CLIENTS" -T "$SECS" -f "$here/pgbench_rank.sql" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
bounced=$("$PGBENCH" -n -M simple -p "$bouncer_port" -c "$((4 * CLIENTS))" -j "$CLIENTS" -T "$SECS" -f "$here/pgbench_rank.sql" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
"$repo/scripts/pgbouncer.sh" stop "$bouncer_dir"
echo "   through PgBouncer ($((4 * CLIENTS)) clients on $CLIENTS server connections) $bounced tps   vs direct ($CLIENTS clients) $direct_simple tps"

read -r f100_50 f100_95 <<<"$first_ml100k"; read -r f138_50 f138_95 <<<"$first_scale_138k"
read -r fcat_50 fcat_95 <<<"$first_scale_catalog"; read -r fhuge_50 fhuge_95 <<<"$first_scale_huge"
read -r p100_50 p100_95 p100_n <<<"$private_ml100k"; read -r p138_50 p138_95 p138_n <<<"$private_scale_138k"
read -r pcat_50 pcat_95 pcat_n <<<"$private_scale_catalog"; read -r phuge_50 phuge_95 phuge_n <<<"$private_scale_huge"
scale_report=$(cat <<SCALE
6. models: ml100k $(ratio "$size_ml100k" 1048576 1) MB · scale_138k $(ratio "$size_scale_138k" 1048576 1) MB · scale_catalog $(ratio "$size_scale_catalog" 1048576 1) MB ($items_scale_catalog items) · scale_huge $(ratio "$size_scale_huge" 1048576 1) MB
7. first neumf_rank on a new connection, p50 / p95 (serving image   vs private copy as in 0.4; goal <= 5 ms at every size):
     ml100k        $f100_50 / $f100_95 ms   vs $p100_50 / $p100_95 ms
     scale_138k    $f138_50 / $f138_95 ms   vs $p138_50 / $p138_95 ms
     scale_catalog $fcat_50 / $fcat_95 ms   vs $pcat_50 / $pcat_95 ms ($pcat_n tries)
     scale_huge    $fhuge_50 / $fhuge_95 ms   vs $phuge_50 / $phuge_95 ms ($phuge_n tries)
     first indexed lookup on a new connection: $lookup_first_p50 / $lookup_first_p95 ms; scale_huge without shared_preload_libraries: $nopre_p50 / $nopre_p95 ms
8. USS growth per backend after its first call, 8 backends, scale_138k: max $uss_max kB (goal <= 4096 kB)   vs private copies max $puss_max kB
     total for 8 backends (PSS growth) $pss_sum kB + one image of $image_kb kB in the page cache   vs $ppss_sum kB for private copies
9. pgbench -C on scale_138k: $big_c tps   vs lookup $big_c_base tps   ratio $(ratio "$big_c" "$big_c_base" 3) (goal >= 0.5)   private copies: $big_c_private tps
10. 1M-item catalogue ($items_scale_catalog items): exact p50 $exact_p50 ms   vs two-stage (candidates => $CANDIDATES) p50 $two_p50 ms (goal <= 10 ms)
     recall@10 vs exact (candidates|recall): $recall_rows (goal >= 0.95)
11. PgBouncer transaction pooling: $bounced tps   vs direct $direct_simple tps
SCALE
)
