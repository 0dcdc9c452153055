#!/bin/sh
# Seeds of the fastsig and certheader targets, signed with this PKI.
# fastsig input: 2 bytes big-endian body length, the body, then the DER of
# the Mdm-Signature (detached CMS SignedData over the body).
set -e
cd "$(dirname "$0")"
V=../../t/vectors/nanomdm/mdm/testdata
OUT=../corpus/fastsig
mkdir -p $OUT ../corpus/certheader
tmp=$(mktemp -d)
trap 'rm -rf $tmp' EXIT
printf 'x' > $tmp/short
n=0
for body in $V/Authenticate.1.plist $V/TokenUpdate.2.plist $tmp/short; do
    for v in "rsa -md sha256" "rsa -md sha1" "rsa -md sha384" "rsa -md sha512" \
             "rsa -md sha256 -noattr" "rsa -md sha256 -nosmimecap" \
             "ec -md sha256" "ec -md sha512" "rsa -md sha256 -nocerts" \
             "rsa -md sha256 -certfile ca.pem" \
             "rsa -md sha256 -keyopt rsa_padding_mode:pss" \
             "rsa -md sha256 -stream" "ec -md sha256 -stream"; do
        set -- $v
        k=$1; shift
        openssl cms -sign -binary -in $body -signer $k.pem -inkey $k.key \
            -outform DER "$@" -out $tmp/sig
        n=$((n + 1))
        perl -e 'my ($b, $s) = @ARGV; local $/;
                 open my $f, "<", $b or die; my $bd = <$f>;
                 open my $g, "<", $s or die; my $sd = <$g>;
                 print pack("n", length $bd), $bd, $sd' $body $tmp/sig \
            > $OUT/seed-$n
    done
done
# certheader input: the header value; RFC 9440 and escaped PEM
for k in rsa ec; do
    printf ':%s:' "$(openssl x509 -in $k.pem -outform DER | base64 -w0)" \
        > ../corpus/certheader/rfc9440-$k
    perl -MURI::Escape -e 'local $/; print uri_escape(<STDIN>)' < $k.pem \
        > ../corpus/certheader/pem-$k 2>/dev/null \
    || perl -e 'local $/; $_ = <STDIN>; s/([^A-Za-z0-9._~-])/sprintf("%%%02X", ord $1)/ge; print' \
        < $k.pem > ../corpus/certheader/pem-$k
done
# machineinfo input: a mode byte (1: verified against ca.pem, 0: not), then
# a CMS SignedData holding a MachineInfo plist, as a device POSTs it
mkdir -p ../corpus/machineinfo
for k in rsa ec; do
    openssl cms -sign -binary -nodetach -in machineinfo.plist -signer $k.pem \
        -inkey $k.key -outform DER -out $tmp/mi
    for mode in 0 1; do
        { printf "\\$mode"; cat $tmp/mi; } > ../corpus/machineinfo/$k-$mode
    done
done
# p7m input: a DEP server token file, encrypted to rsa.pem (the DEP name's
# certificate in the target) as Apple's portal does, in every form the API
# takes: S/MIME with headers, DER, PEM, bare base64
mkdir -p ../corpus/p7m
printf '{"consumer_key":"CK_fuzz","consumer_secret":"CS_fuzz","access_token":"AT_fuzz","access_secret":"AS_fuzz","access_token_expiry":"2030-01-01T00:00:00Z"}' \
    > $tmp/token.json
for f in SMIME DER PEM; do
    openssl cms -encrypt -aes256 -in $tmp/token.json -recip rsa.pem \
        -outform $f -out ../corpus/p7m/token-$(echo $f | tr A-Z a-z)
done
base64 -w 76 ../corpus/p7m/token-der > ../corpus/p7m/token-b64
openssl cms -encrypt -des3 -in $tmp/token.json -recip ec.pem -outform DER \
    -out ../corpus/p7m/token-ec-recipient
# ddmstatus input: the status reports of KMFDDM's and Apple's examples
mkdir -p ../corpus/ddmstatus
for s in ../../t/vectors/kmfddm/test/e2e/testdata/status.*.json \
         ../../t/vectors/kmfddm/ddm/testdata/*.status.json; do
    cp "$s" ../corpus/ddmstatus/
done
