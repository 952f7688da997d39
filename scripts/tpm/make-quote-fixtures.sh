#!/bin/bash
# Makes the real-TPM fixtures in test/fixtures/tpm/ with tpm2-tools on a fresh swtpm:
# EK publics (RSA 2048 / ECC P-256 default templates), attestation keys and quotes signed by
# them (ECDSA P-256, RSASSA, RSAPSS), with the PCR values they cover, Names and Qualified Names.
# The TypeScript tests verify these independently of the code that will produce quotes.
#
# usage: scripts/tpm/make-quote-fixtures.sh [OUT_DIR]   (default test/fixtures/tpm)
set -euo pipefail

OUT=${1:-"$(dirname "$0")/../../test/fixtures/tpm"}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STATE=$(mktemp -d)
WORK=$(mktemp -d)

# A free loopback port pair (server P, control P+1).
while :; do
  PORT=$((20000 + RANDOM % 20000))
  if ! ss -ltn | grep -qE ":($PORT|$((PORT + 1)))\b"; then break; fi
done

swtpm socket --tpm2 \
  --server type=tcp,port=$PORT,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1 \
  --tpmstate dir="$STATE" --flags not-need-init,startup-clear \
  --pid file="$STATE/pid" --daemon
cleanup() {
  if [ -f "$STATE/pid" ]; then kill "$(cat "$STATE/pid")" 2>/dev/null || true; fi
  rm -rf "$STATE" "$WORK"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -s "$STATE/pid" ] && break; sleep 0.1; done

export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$PORT"
# swtpm has no resource manager: every tool leaves its loaded objects behind, so flush them.
t() { "$@"; tpm2_flushcontext -t; }
cd "$WORK"

# Non-trivial PCR values: extend a few PCRs in both banks.
tpm2_pcrextend 0:sha256=$(printf 'sextant-0' | sha256sum | cut -c1-64),sha1=$(printf 'sextant-0' | sha1sum | cut -c1-40)
tpm2_pcrextend 7:sha256=$(printf 'sextant-7' | sha256sum | cut -c1-64)
tpm2_pcrevent 15 <(printf 'cluster-id')

# EKs from the TCG default templates (tpm2_createek uses templates L-1 and L-2).
t tpm2_createek -G rsa -c ek-rsa.ctx -u "$OUT/ek-rsa.pub"
t tpm2_readpublic -c ek-rsa.ctx -n "$OUT/ek-rsa.name" > /dev/null
t tpm2_createek -G ecc -c ek-ecc.ctx -u "$OUT/ek-ecc.pub"
t tpm2_readpublic -c ek-ecc.ctx -n "$OUT/ek-ecc.name" > /dev/null

# A storage primary in the owner hierarchy, and AKs under it.
t tpm2_createprimary -C o -G ecc256 -c srk.ctx > /dev/null
ATTRS='fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'
NONCE=$(printf 'sextant quote fixture nonce' | sha256sum | cut -c1-64)
printf '%s' "$NONCE" > "$OUT/quote-nonce.hex"

make_quote() { # name key-algorithm pcr-list signing-scheme
  local name=$1 alg=$2 pcrs=$3 scheme=$4
  t tpm2_create -C srk.ctx -G "$alg" -a "$ATTRS" -u "$name.pub" -r "$name.priv" > /dev/null
  t tpm2_load -C srk.ctx -u "$name.pub" -r "$name.priv" -c "$name.ctx" > /dev/null
  cp "$name.pub" "$OUT/$name.pub"
  t tpm2_readpublic -c "$name.ctx" -f pem -o "$OUT/$name.pem" -n "$OUT/$name.name" -q "$OUT/$name.qname" > /dev/null
  t tpm2_quote -c "$name.ctx" -l "$pcrs" -q "$NONCE" -m "$OUT/quote-$name.attest" -s "$OUT/quote-$name.sig" \
    --scheme "$scheme" -g sha256 > /dev/null
  # The PCR values as raw digests concatenated in selection order.
  tpm2_pcrread "$pcrs" -o "$OUT/quote-$name.pcrs" > /dev/null
  printf '%s' "$pcrs" > "$OUT/quote-$name.selection"
}

make_quote ak-ecc ecc256:ecdsa-sha256:null sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 ecdsa
make_quote ak-rsassa rsa2048:rsassa-sha256:null sha1:0,7+sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 rsassa
make_quote ak-rsapss rsa2048:rsapss-sha256:null sha256:0,7,15 rsapss

# The owner-hierarchy storage key's Name, for the qualified-name chain.
t tpm2_readpublic -c srk.ctx -n "$OUT/srk.name" -q "$OUT/srk.qname" > /dev/null

echo "fixtures written to $OUT"
