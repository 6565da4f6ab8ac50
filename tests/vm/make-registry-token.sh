#!/usr/bin/env bash
# Tokens for systemd_registry_token: docker-registry (distribution 2.8) with its JWT
# token auth (auth: token: realm/service/issuer/rootcertbundle), and a token service
# that hands out a token signed here. Made at root-image build time because the
# guest has no openssl command.
#
# What distribution 2.8 checks (registry/auth/token/token.go, accesscontroller.go):
# iss is the configured issuer; aud the configured service; exp and nbf within 60 s
# of leeway; the signature by the key of the x5c header's first certificate, whose
# chain must verify against rootcertbundle; and the access claim must grant the
# requested action on the repository. sub, iat and jti are carried, not checked.
#
# usage: make-registry-token.sh OUTDIR
#   OUTDIR/root.pem     the certificate for rootcertbundle
#   OUTDIR/token.json   {"token": <JWT pulling cfs/images>, "expires_in": 6}
#   OUTDIR/forged.json  the same claims signed by a key whose certificate the
#                       registry does not trust (a refused token)
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# KEY_PREFIX: a self-signed RSA certificate and its key.
make_signer() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=cfs test token issuer ($1)" \
        -keyout "$work/$1.key" -out "$work/$1.pem" 2> /dev/null
}

# SIGNER EXPIRES_IN: prints the token service's JSON answer.
token_json() {
    local now x5c header claims signing_input signature
    now=$(date +%s)
    x5c=$(openssl x509 -in "$work/$1.pem" -outform DER | openssl base64 -A)
    header=$(printf '{"typ":"JWT","alg":"RS256","x5c":["%s"]}' "$x5c" | b64url)
    # Valid for ten years: the image is cached, and the registry checks exp; the
    # worker's renewals follow expires_in, which is what the scenario exercises.
    claims=$(printf '{"iss":"cfs-test-issuer","sub":"puller","aud":"cfs-registry","exp":%d,"nbf":%d,"iat":%d,"jti":"%s","access":[{"type":"repository","name":"cfs/images","actions":["pull"]}]}' \
        $((now + 10 * 365 * 86400)) $((now - 60)) "$now" "$(openssl rand -hex 16)" | b64url)
    signing_input="$header.$claims"
    signature=$(printf '%s' "$signing_input" | openssl dgst -sha256 -sign "$work/$1.key" -binary | b64url)
    printf '{"token": "%s.%s", "expires_in": %d}\n' "$signing_input" "$signature" "$2"
}

make_signer trusted
make_signer forger
cp "$work/trusted.pem" "$out/root.pem"
token_json trusted 6 > "$out/token.json"
token_json forger 6 > "$out/forged.json"
chmod 0644 "$out/root.pem" "$out/token.json" "$out/forged.json"
