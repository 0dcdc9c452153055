#!/bin/sh
# The test PKI of the fastsig and certheader targets (test keys only, never
# trusted anywhere): a CA, an RSA and an EC device certificate, valid
# for 100 years.  Run once; the seeds in ../corpus were signed with these.
set -e
cd "$(dirname "$0")"
cat > ext.cnf <<'X'
[dev]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
X
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -subj "/CN=ngx_mdm fuzz CA" -days 36500 \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key
for k in rsa ec; do
    openssl req -new -key $k.key -subj "/CN=fuzz device $k" -out $k.csr
    openssl x509 -req -in $k.csr -CA ca.pem -CAkey ca.key -set_serial 0x$(openssl rand -hex 8) \
        -days 36500 -extfile ext.cnf -extensions dev -out $k.pem
    rm $k.csr
done
rm -f ext.cnf
