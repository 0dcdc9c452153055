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
