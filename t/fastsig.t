# The Mdm-Signature fast path (a cache of verified signer certificates)
# against the full verification: thousands of generated good and bad
# inputs, each sent to a location with the cache and to one without; every
# verdict must be the same, and the cache must really have been used.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use MIME::Base64 qw(encode_base64 decode_base64);

no_shuffle();
worker_connections(1024);

our $DEVICES = 12;
our $FLIPS = 120;       # single-byte corruptions per device
our $BODY = vector("nanomdm/mdm/testdata/Authenticate.2.plist");

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=10s;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /fast { mdm_checkin; mdm_identity_cache 1000; }
        location = /full { mdm_checkin; mdm_identity_cache off; }
        location = /skew0 { mdm_checkin; mdm_signature_skew 0; }
    },
);

sub body_for ($) {
    my $b = plist_set($BODY, UDID => sprintf("FAST-%04d", $_[0]));
    $b =~ s/^\s+|\s+\z//g;
    return $b;
}

sub req ($$$) {
    my ($path, $body, $sig) = @_;
    return http_request(PUT => $path, $body,
        [ 'Content-Type' => $t::MDM::CheckinType,
          defined $sig ? ('Mdm-Signature' => $sig) : () ]);
}

# A DER tree: constructed elements (tag bit 0x20) as [tag, [children]],
# primitive ones as [tag, bytes]; der_encode(der_parse($x)) eq $x for DER.
sub der_parse ($) {
    my ($der) = @_;
    my @nodes;
    while (length $der) {
        my ($tag, $hl, $len) = t::MDM::_der_tlv($der, 0);
        my $content = substr($der, $hl, $len);
        push @nodes, [ $tag, ($tag & 0x20) ? [ der_parse($content) ] : $content ];
        $der = substr($der, $hl + $len);
    }
    return @nodes;
}

sub der_len ($) {
    my ($n) = @_;
    return chr($n) if $n < 0x80;
    my $b = '';
    while ($n) { $b = chr($n & 0xff) . $b; $n >>= 8 }
    return chr(0x80 | length $b) . $b;
}

sub der_encode (@) {
    return join '', map {
        my ($tag, $c) = @$_;
        my $content = ref $c ? der_encode(@$c) : $c;
        chr($tag) . (($_->[2] // '') eq 'long' ? "\x81" . chr(length $content)
                                               : der_len(length $content))
                  . $content
    } @_;
}

# the SignerInfo of a parsed ContentInfo: [0] -> SignedData -> last SET -> 1st
sub signer_info ($) {
    my ($ci) = @_;
    return $ci->[1][1][1][0][1][-1][1][0];
}

# the signer's signatureAlgorithm replaced by ecdsa-with-SHA256: an RSA key
# under an ECDSA OID, which OpenSSL refuses
sub ecdsa_oid ($) {
    my ($sig) = @_;
    my ($ci) = der_parse(decode_base64($sig));
    my $si = signer_info($ci);
    $si->[1][4] = [ 0x30, [ [ 0x06, "\x2a\x86\x48\xce\x3d\x04\x03\x02" ] ] ];
    return encode_base64(der_encode($ci), '');
}

# the signed attributes with a long-form length where DER has a short one,
# signed as sent: the full path re-encodes them as DER before verifying
sub long_attrs ($$) {
    my ($sig, $dev) = @_;
    my ($ci) = der_parse(decode_base64($sig));
    my $si = signer_info($ci);
    my $attrs = $si->[1][3];
    $attrs->[2] = 'long';
    my $set = der_encode([ 0x31, $attrs->[1], 'long' ]);

    my $dir = pki_dir();
    open my $fh, '>:raw', "$dir/long-attrs.bin" or die $!;
    print $fh $set;
    close $fh;
    my ($st, $out, $err) = t::MDM::run_cmd('openssl', 'dgst', '-sha256', '-sign',
        $dev->{key}, '-out', "$dir/long-attrs.sig", "$dir/long-attrs.bin");
    die "openssl dgst: $err" if $st;
    open $fh, '<:raw', "$dir/long-attrs.sig" or die $!;
    my $signature = do { local $/; <$fh> };
    $si->[1][5] = [ 0x04, $signature ];
    return encode_base64(der_encode($ci), '');
}

# every input as [label, body, signature]
sub inputs () {
    my @in;

    for my $i (1 .. $DEVICES) {
        my $body = body_for($i);
        my $dev = device_cert("fast$i", shared_key => 1);
        my $good = mdm_signature($body, $dev);
        my $der = decode_base64($good);

        push @in, [ "good $i", $body, $good ],
                  [ "ber $i", $body, mdm_signature($body, $dev, ber => 1) ],
                  [ "noattr $i", $body, mdm_signature($body, $dev, noattr => 1) ],
                  [ "chain $i", $body, mdm_signature($body, $dev, chain => 1) ],
                  [ "body tampered $i", $body =~ s/Fruit/Fruiz/r, $good ],
                  [ "body of another $i", body_for($i % $DEVICES + 1), $good ],
                  [ "truncated $i", $body, encode_base64(substr($der, 0, -7), '') ],
                  [ "RSA key under an ECDSA OID $i", $body, ecdsa_oid($good) ],
                  [ "long-form attribute length $i", $body, long_attrs($good, $dev) ],
                  [ "garbage $i", $body, "not base64 at all!" ];

        # one byte changed at a time, all through the structure
        srand($i);
        for my $f (1 .. $FLIPS) {
            my $d = $der;
            my $pos = int(rand(length $d));
            substr($d, $pos, 1) = chr(ord(substr($d, $pos, 1)) ^ (1 << int(rand(8))));
            push @in, [ "flip $i\@$pos", $body, encode_base64($d, '') ];
        }
    }

    my $body = body_for(1);
    push @in,
        [ "rogue CA", $body, mdm_signature($body, device_cert("fast-rogue", issuer => 'rogue')) ],
        [ "expired", $body, mdm_signature($body, device_cert("fast-old", expired => 1)) ],
        [ "server auth only", $body, mdm_signature($body, device_cert("fast-srv", no_client_auth => 1)) ],
        [ "not yet valid, within skew", $body,
          mdm_signature($body, device_cert("fast-new", not_before_in => 5)) ],
        [ "no signature", $body, undef ];

    return \@in;
}

sub status_of ($@) {
    my ($path, @in) = @_;
    my @r;
    # in batches, so a run stays within worker_connections
    while (my @batch = splice @in, 0, 100) {
        push @r, map { $_->{status} // 0 }
                 @{ concurrent_requests(server_port(), [ map { req($path, $_->[1], $_->[2]) } @batch ],
                                        timeout => 60) };
    }
    return @r;
}

sub differential () {
    my @in = @{ inputs() };

    # warm the cache: the fast path only knows certificates verified once
    status_of("/fast", grep { $_->[0] =~ /^good / } @in);

    my @fast = status_of("/fast", @in);
    my @full = status_of("/full", @in);

    my @diff = grep { $fast[$_] != $full[$_] } 0 .. $#in;
    Test::More::is(scalar @diff, 0, scalar(@in) . " inputs: the same verdict with and without the cache")
        or Test::More::diag(join "\n", map { "$in[$_][0]: fast $fast[$_], full $full[$_]" } @diff[0 .. 9]);

    my $ok = grep { $_ == 200 } @full;
    Test::More::cmp_ok($ok, '>=', 3 * $DEVICES, "accepted: good, BER, noattr, chain ($ok)");
    Test::More::cmp_ok(scalar(@in) - $ok, '>=', $FLIPS * $DEVICES / 2, "refused: " . (scalar(@in) - $ok));
}

run_tests();

__DATA__

=== TEST 1: fast and full verification agree on every input
--- request
GET /fast
--- error_code: 405
--- after_each eval
[ sub { ::differential() } ]
--- grep_error_log eval
qr/signature verified with a cached certificate/
--- grep_error_log_out eval
qr/\A(signature verified with a cached certificate\n){12,}\z/



=== TEST 2: the cache keeps the skew rule: a certificate not yet valid is refused without skew
--- request eval
my $body = ::body_for(2);
"PUT /skew0\n$body"
--- more_headers eval
"Content-Type: $t::MDM::CheckinType\nMdm-Signature: "
. mdm_signature(::body_for(2), device_cert("fast-later", not_before_in => 30))
--- error_code: 400
--- error_log eval
qr/answered 400: .*(notBefore|not yet valid)/



=== TEST 3: with room for 4 keys and 12 devices, keys rebuilt from the cached verdicts give the same verdicts
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /fast { mdm_checkin; mdm_identity_cache 4 verdicts=1000; }
location = /full { mdm_checkin; mdm_identity_cache off; }
--- request
GET /fast
--- error_code: 405
--- after_each eval
[ sub { ::differential() } ]
--- grep_error_log eval
qr/certificate key rebuilt from a cached verdict/
--- grep_error_log_out eval
qr/\A(certificate key rebuilt from a cached verdict\n){8,}\z/



=== TEST 4: without verdicts, the same 12 devices through 4 keys: no key is rebuilt, verdicts still agree
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /fast { mdm_checkin; mdm_identity_cache 4 verdicts=0; }
location = /full { mdm_checkin; mdm_identity_cache off; }
--- request
GET /fast
--- error_code: 405
--- after_each eval
[ sub { ::differential() } ]
--- no_error_log
certificate key rebuilt from a cached verdict



=== TEST 5: with room for 4 keys, keys rebuilt from verdicts in a shared zone give the same verdicts
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /fast { mdm_checkin; mdm_identity_cache 4 zone=fastsig_ids:1m; }
location = /full { mdm_checkin; mdm_identity_cache off; }
--- request
GET /fast
--- error_code: 405
--- after_each eval
[ sub { ::differential() } ]
--- grep_error_log eval
qr/certificate verdict found in the shared zone/
--- grep_error_log_out eval
qr/\A(certificate verdict found in the shared zone\n){8,}\z/
