# Issues this node's certificate, in the init container: a new key made here
# (it never leaves the pod), signed by the mesh CA, naming the node's identity
# spiffe://$TRUST_DOMAIN/node/$MESHD_NODE_ID (peers check it) and the names
# clients dial. The meshd container gets the key, the certificate and the CA
# bundle; only this container sees the CA's key.
#   CA_DIR: tls.crt, tls.key (the CA) and ca.crt (the bundle to trust)
#   TLS_DIR: where node.crt, node.key and ca.crt are written
#   CERT_DNS_NAMES: comma-separated; CERT_DAYS: validity
set -eu
umask 077
# A pod that starts again keeps its emptyDir: replace what an earlier run wrote.
rm -f "$TLS_DIR/node.key" "$TLS_DIR/node.crt" "$TLS_DIR/ca.crt" "$TLS_DIR/node.csr"
bundle="$CA_DIR/ca.crt"
[ -s "$bundle" ] || bundle="$CA_DIR/tls.crt"
sans="URI:spiffe://$TRUST_DOMAIN/node/$MESHD_NODE_ID,IP:127.0.0.1,DNS:localhost"
[ -z "${POD_IP:-}" ] || sans="$sans,IP:$POD_IP"
for name in $(echo "$CERT_DNS_NAMES" | tr ',' ' '); do sans="$sans,DNS:$name"; done
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TLS_DIR/node.key" -out "$TLS_DIR/node.csr" -subj "/CN=$MESHD_NODE_ID" \
  -addext "subjectAltName=$sans" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
  -addext "extendedKeyUsage=serverAuth,clientAuth"
openssl x509 -req -in "$TLS_DIR/node.csr" -CA "$CA_DIR/tls.crt" -CAkey "$CA_DIR/tls.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days "$CERT_DAYS" -copy_extensions copyall \
  -out "$TLS_DIR/node.crt"
# An intermediate CA's certificate goes with the node's, for peers that trust the root.
cmp -s "$CA_DIR/tls.crt" "$bundle" || cat "$CA_DIR/tls.crt" >> "$TLS_DIR/node.crt"
cp "$bundle" "$TLS_DIR/ca.crt"
rm -f "$TLS_DIR/node.csr"
chmod 0440 "$TLS_DIR/node.key"
chmod 0444 "$TLS_DIR/node.crt" "$TLS_DIR/ca.crt"
openssl x509 -in "$TLS_DIR/node.crt" -noout -subject -enddate
