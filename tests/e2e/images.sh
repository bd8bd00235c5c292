# Serving images (issue 11) from outside the server: backends building one image at once, two
# backends mapping the same file, damaged and truncated images, a backend killed mid-build,
# and serving through PgBouncer in transaction pooling.

images_dir() { qc "SELECT current_setting('data_directory') || '/pgsql_tmp_neumf/' || oid FROM pg_database WHERE datname = current_database()"; }
# LOG lines of image builds of model $1 so far.
builds_of() { grep -c "neumf built the serving image of model \"$1\"" "$NEUMF_PGDATA/server.log" || true; }

images_model() { # model
  small_table "${1}_data"
  must "SELECT neumf_drop('$1', if_exists => true)" || return 1
  must "SELECT neumf_train('$1', '${1}_data', epochs => 1, validation => false, pretrain => false)"
}

t_images_built_once_and_shared() {
  images_model im_shared || return 1
  local before tmp; before=$(builds_of im_shared); tmp=$(mktemp -d)
  # Six backends ask for the new version at once; the first builds (slowly), the rest wait.
  for n in 1 2 3 4 5 6; do
    PGOPTIONS='-c client_min_messages=warning -c neumf.test_image_build_delay=700' \
      psql -X -q -tA -c "SELECT neumf_score('im_shared', 1, 5)" >"$tmp/score_$n" 2>&1 &
  done
  wait
  assert_eq "$(sort -u "$tmp"/score_* | wc -l)" "1" "six backends give one score"
  assert_eq "$(( $(builds_of im_shared) - before ))" "1" "the image was built once"
  rm -rf "$tmp"
  # Two live backends map the very same file (same device and inode).
  for app in im_a im_b; do
    PGAPPNAME=$app psql -X -q -c "SELECT neumf_score('im_shared', 1, 5)" -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
  done
  wait_until "(SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('im_a', 'im_b') AND query LIKE '%pg_sleep%') = 2" 20 >/dev/null \
    || { fail "the two sessions did not start"; return 1; }
  local path; path=$(qc "SELECT path FROM neumf_images() WHERE model = 'im_shared'")
  local inode; inode=$(stat -c %d:%i "$path")
  for app in im_a im_b; do
    local pid; pid=$(qc "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")
    grep -q " $path\$" "/proc/$pid/maps" || fail "backend $app ($pid) does not map $path"
    local mapped; mapped=$(awk -v p="$path" '$6 == p {print $5; exit}' "/proc/$pid/maps")
    assert_eq "$mapped" "$(stat -c %i "$path")" "backend $app maps inode $inode"
  done
  wait
}

t_images_damaged_or_truncated_are_rebuilt() {
  images_model im_damage || return 1
  local score; score=$(qc "SELECT neumf_score('im_damage', 1, 5)")
  local path; path=$(qc "SELECT path FROM neumf_images() WHERE model = 'im_damage'")
  [ -f "$path" ] || { fail "no image at '$path'"; return 1; }
  # One flipped byte near the end of the weights: found by the checksum on first use after a
  # restart, rebuilt, never served.
  local size; size=$(stat -c %s "$path")
  printf '\xff\xff\xff\xff' | dd of="$path" bs=1 seek=$((size - 100)) conv=notrunc status=none
  cluster restart >/dev/null || { fail "restart failed"; return 1; }
  local out; out=$(PGOPTIONS='-c client_min_messages=warning' psql -X -q -tA -c "SELECT neumf_score('im_damage', 1, 5)" 2>&1)
  [[ "$out" == *"was damaged (its data fails its checksum); rebuilt it"* ]] || fail "no rebuild warning: $out"
  assert_eq "$(tail -1 <<<"$out")" "$score" "the rebuilt image serves the same score"
  assert_eq "$(qc "SELECT verified FROM neumf_images() WHERE model = 'im_damage'")" "t" "the new image is verified"
  # Truncated under a running server: the next backend to attach sees it at once.
  truncate -s $((size / 2)) "$path"
  out=$(PGOPTIONS='-c client_min_messages=warning' psql -X -q -tA -c "SELECT neumf_score('im_damage', 1, 5)" 2>&1)
  [[ "$out" == *"was damaged"*"truncated"* ]] || fail "no rebuild warning for the truncated image: $out"
  assert_eq "$(tail -1 <<<"$out")" "$score" "and serves the same score"
  assert_eq "$(stat -c %s "$path")" "$size" "the image is whole again"
  # After a restart an intact image is verified once, not rebuilt.
  local builds; builds=$(builds_of im_damage)
  cluster restart >/dev/null || { fail "restart failed"; return 1; }
  assert_eq "$(qc "SELECT neumf_score('im_damage', 1, 5)")" "$score" "after a restart"
  assert_eq "$(builds_of im_damage)" "$builds" "an intact image is not rebuilt after a restart"
  grep -q "neumf verified the serving image of model \"im_damage\"" "$NEUMF_PGDATA/server.log" \
    || fail "no verification logged after the restart"
}

t_images_kill9_mid_build() {
  images_model im_kill || return 1
  # The test cluster commits asynchronously: make the model survive the crash restart.
  must "CHECKPOINT" || return 1
  local dir; dir=$(images_dir)
  PGOPTIONS='-c neumf.test_image_build_delay=30000' psql -X -q -c "SELECT neumf_score('im_kill', 1, 5)" >/dev/null 2>&1 &
  local bg=$! temp=""
  for _ in $(seq 1 200); do
    temp=$(ls "$dir" 2>/dev/null | grep -m1 '\.tmp[0-9]*$' || true)
    [ -n "$temp" ] && break
    sleep 0.05
  done
  [ -n "$temp" ] || { fail "no build in progress appeared in $dir"; return 1; }
  local pid=${temp##*.tmp}
  kill -9 "$pid" || { fail "could not kill -9 builder $pid"; return 1; }
  wait $bg; sleep 1; wait_server || return 1
  assert_eq "$(ls "$dir" | grep -c '^[0-9a-f]*\.v[0-9]*\.[0-9a-f]*\.L[0-9]*\.img$' || true)" \
    "$(qc "SELECT count(*) FROM neumf_images() WHERE model <> 'im_kill'")" "the killed build published nothing"
  local score; score=$(qc "SELECT neumf_score('im_kill', 1, 5)")
  assert_true "$score IS NOT NULL" "the next call builds the image and serves"
  assert_eq "$(ls "$dir" | grep -c '\.tmp' || true)" "0" "the dead builder's temporary file was swept"
  assert_eq "$(qc "SELECT count(*) FROM neumf_images() WHERE model = 'im_kill'")" "1" "one image"
}
