#!/bin/sh
# demo-pki.sh DIR: a throwaway identity CA and one device certificate, for
# trying ngx_mdm on localhost (./build.sh run).  Real deployments point
# mdm_identity_ca at the CA their SCEP/ACME server issues device identities
# from.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout ca.key \
    -out identity-ca.pem -subj "/CN=ngx_mdm demo identity CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout device.key -out device.csr \
    -subj "/CN=ngx_mdm demo device" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n' > device.ext
openssl x509 -req -in device.csr -CA identity-ca.pem -CAkey ca.key \
    -CAcreateserial -days 365 -extfile device.ext -out device.pem 2>/dev/null
rm -f device.csr device.ext
