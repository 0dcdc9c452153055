# The SCEP CA inside nginx (mdm_scep): GetCACaps, GetCACert, and PKCSReq by
# POST and GET, made by t/scepclient.c the way Apple devices make them; every
# CertRep is checked in full (signature by the CA or RA, messageType,
# pkiStatus, failInfo, transactionID, both nonces, the envelope decrypted
# with the device key, the issued certificate), and an issued certificate
# then checks in through `mdm_identity signature`. Refusals are a CertRep
# FAILURE with the right failInfo and one [error] line; what cannot be read
# is a 400 with one line.

use Test::Nginx::Socket 'no_plan';
use t::MDM;

use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);

no_shuffle();

our $Dir = pki_dir() . '/scep';
our $Vec = t::MDM::vectors_dir() . '/scep/micromdm-scep';
our %Txn;    # name => { dir, txid, nonce }

# the client, the CA (with the key usages SCEP clients look for), an RA
{
    mkdir $Dir;
    t::MDM::_run('gcc', '-O1', '-o', "$Dir/scepclient", 't/scepclient.c',
                 '-lcrypto');
    my $ext = "$Dir/ca.ext";
    open my $fh, '>', $ext or die "$ext: $!";
    print {$fh} "[ca]\nbasicConstraints=critical,CA:TRUE\n"
        . "keyUsage=critical,keyCertSign,cRLSign,digitalSignature,"
        . "keyEncipherment\nsubjectKeyIdentifier=hash\n"
        . "[ra]\nbasicConstraints=critical,CA:FALSE\n"
        . "keyUsage=critical,digitalSignature,keyEncipherment\n";
    close $fh;
    t::MDM::_run('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                 '-keyout', "$Dir/ca.key", '-out', "$Dir/ca.pem",
                 '-days', '3650', '-subj', '/O=ngx_mdm tests/CN=SCEP CA',
                 '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign,'
                            . 'digitalSignature,keyEncipherment');
    t::MDM::_run('openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes',
                 '-keyout', "$Dir/ra.key", '-out', "$Dir/ra.csr",
                 '-subj', '/O=ngx_mdm tests/CN=SCEP RA');
    t::MDM::_run('openssl', 'x509', '-req', '-in', "$Dir/ra.csr",
                 '-CA', "$Dir/ca.pem", '-CAkey', "$Dir/ca.key",
                 '-set_serial', '1000', '-days', '3650',
                 '-extfile', $ext, '-extensions', 'ra',
                 '-out', "$Dir/ra.pem");
    open $fh, '>', "$Dir/challenge" or die $!;
    print {$fh} "file-secret\n";
    close $fh;
    $ENV{TEST_NGINX_SCEP} = $Dir;
    $ENV{TEST_NGINX_SCEP_API_KEY} = 'scep-api-key';
    $ENV{TEST_NGINX_SCEP_VECTOR} = $Vec;
}

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    },
    config => q{
        location = /scep {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_SCEP/ca.pem $TEST_NGINX_SCEP/ca.key;
            mdm_scep_challenge static-secret;
            mdm_scep_validity 30d;
        }
        location = /scep-ra {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_SCEP/ca.pem $TEST_NGINX_SCEP/ca.key;
            mdm_scep_ra $TEST_NGINX_SCEP/ra.pem $TEST_NGINX_SCEP/ra.key;
            mdm_scep_challenge_file $TEST_NGINX_SCEP/challenge;
        }
        location = /scep-inline {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_SCEP/ca.pem $TEST_NGINX_SCEP/ca.key;
            mdm_scep_challenge static-secret;
            mdm_scep_thread_pool off;
        }
        location = /scep-open {
            mdm_scep;
            mdm_scep_ca $TEST_NGINX_SCEP/ca.pem $TEST_NGINX_SCEP/ca.key;
            mdm_scep_challenge_required off;
        }
        location /v1/ {
            mdm_api;
            mdm_api_key $TEST_NGINX_SCEP_API_KEY;
            mdm_scep_challenge_ttl 120;
        }
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity signature;
            mdm_identity_ca $TEST_NGINX_SCEP/ca.pem;
        }
    },
);

# scep_req(NAME, CN, CHALLENGE, CIPHER, MD, OPTION...) -> the PKCSReq DER
sub scep_req {
    my ($name, $cn, $challenge, $cipher, $md, @opt) = @_;
    my $dir = "$Dir/$name";
    mkdir $dir;
    my $ca = (grep { $_ eq 'ra' } @opt) ? "$Dir/ra.pem" : "$Dir/ca.pem";
    @opt = grep { $_ ne 'ra' } @opt;
    t::MDM::_run("$Dir/scepclient", 'req', $dir, $ca, $cn, $challenge,
                 $cipher, $md, @opt);
    $Txn{$name} = { dir => $dir, cn => $cn, cipher => $cipher, md => $md,
                    txid => t::MDM::_slurp("$dir/txid"),
                    nonce => t::MDM::_slurp("$dir/nonce") };
    return t::MDM::_slurp("$dir/req.der");
}

sub post_req {
    my ($path, $name, @args) = @_;
    return http_request(POST => "$path?operation=PKIOperation",
                        scep_req($name, @args),
                        [ 'Content-Type' => 'application/x-pki-message' ]);
}

# As macOS sends it: only "=" escaped, "+" and "/" literal. Made again
# until the base64 holds both (a 4 KB message nearly always does).
sub get_req {
    my ($path, $name, @args) = @_;
    for (1 .. 20) {
        my $b64 = encode_base64(scep_req($name, @args), '');
        next unless $b64 =~ /\+/ && $b64 =~ m{/};
        $b64 =~ s/=/%3D/g;
        return http_request(GET =>
            "$path?operation=PKIOperation&message=$b64");
    }
    die "no base64 with + and / in 20 tries";
}

# the client's verdict on a CertRep, as a hash
sub parse_rep {
    my ($name, $body, $signer, $issuer) = @_;
    my $dir = $name ? $Txn{$name}{dir} : "$Dir/anon";
    mkdir $dir;
    t::MDM::_spew("$dir/rep.der", $body);
    my ($st, $out, $err) = t::MDM::run_cmd("$Dir/scepclient", 'rep', $dir,
        $signer // "$Dir/ca.pem", "$dir/rep.der", $issuer // ());
    Test::More::is($st, 0, "the client accepts the CertRep") or
        Test::More::diag($err);
    return { map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split /\n/, $out };
}

# the attributes every CertRep must carry for this transaction
sub check_common {
    my ($name, $r) = @_;
    my $t = $Txn{$name};
    Test::More::is($r->{messageType}, '3', "$name: messageType CertRep");
    Test::More::is($r->{transactionID}, $t->{txid},
                   "$name: the request's transactionID");
    Test::More::is($r->{recipientNonce}, $t->{nonce},
                   "$name: recipientNonce is the request's senderNonce");
    Test::More::like($r->{senderNonce} // '', qr/^[0-9a-f]{32}\z/,
                     "$name: a 16-byte senderNonce");
    Test::More::isnt($r->{senderNonce}, $t->{nonce},
                     "$name: the senderNonce is fresh");
}

sub check_fail {
    my ($name, $body, $info) = @_;
    my $r = parse_rep($name, $body);
    check_common($name, $r);
    Test::More::is($r->{pkiStatus}, '2', "$name: pkiStatus FAILURE");
    Test::More::is($r->{failInfo}, $info, "$name: failInfo $info");
    Test::More::is($r->{content}, '0', "$name: a FAILURE has no content");
}

# a SUCCESS, the certificate it holds, its record, and a check-in with it
sub check_success {
    my ($name, $body, %o) = @_;
    my $t = $Txn{$name};
    my $r = parse_rep($name, $body, $o{signer}, "$Dir/ca.pem");
    check_common($name, $r);
    Test::More::is($r->{pkiStatus}, '0', "$name: pkiStatus SUCCESS");
    Test::More::ok(!defined $r->{failInfo}, "$name: no failInfo");
    my %cipher = (aes128 => 'AES-128-CBC', aes256 => 'AES-256-CBC',
                  aes192 => 'AES-192-CBC', des3 => 'DES-EDE3-CBC');
    Test::More::is($r->{envelope}, $cipher{ $t->{cipher} },
                   "$name: answered with the request's cipher");
    Test::More::is(lc $r->{digest}, $t->{md},
                   "$name: signed with the request's digest");
    Test::More::is($r->{certs}, '1', "$name: one certificate");
    Test::More::is($r->{pubkey_match}, '1', "$name: for the device key");
    Test::More::is($r->{issuer_signed}, '1', "$name: signed by the CA");

    my $cert = "$t->{dir}/cert.pem";
    my $text = t::MDM::_run('openssl', 'x509', '-in', $cert, '-noout',
                            '-text', '-nameopt', 'RFC2253');
    Test::More::like($text, qr/Subject: CN=\Q$t->{cn}\E,O=ngx_mdm tests\n/,
                     "$name: the CSR's subject");
    Test::More::like($text, qr/Issuer: CN=SCEP CA,O=ngx_mdm tests\n/,
                     "$name: issued by the CA");
    Test::More::like($text,
        qr/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/,
        "$name: KU digitalSignature + keyEncipherment");
    Test::More::like($text,
        qr/X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication\n/,
        "$name: EKU clientAuth");
    Test::More::like($text, qr/CA:FALSE/, "$name: not a CA");

    my $days = $o{days} // 365;
    my $end = t::MDM::_run('openssl', 'x509', '-in', $cert, '-noout',
                           '-enddate');
    my ($ok) = t::MDM::_run('openssl', 'x509', '-in', $cert, '-noout',
                            '-checkend', $days * 86400 - 600) =~ /will not/;
    my ($past) = t::MDM::run_cmd('openssl', 'x509', '-in', $cert, '-noout',
                                 '-checkend', $days * 86400 + 600);
    Test::More::ok($ok && $past, "$name: valid for $days days ($end)");

    my $serial = t::MDM::_run('openssl', 'x509', '-in', $cert, '-noout',
                              '-serial') =~ /serial=([0-9A-F]+)/ ? hex $1 : 0;
    my $der = t::MDM::_pem_to_der(t::MDM::_slurp($cert));
    Test::More::is(redis('HGET', "mdm:scep:cert:$serial", 'sha256'),
                   sha256_hex($der), "$name: recorded under serial $serial");
    Test::More::is(redis('HGET', "mdm:scep:cert:$serial", 'subject'),
                   "CN=$t->{cn},O=ngx_mdm tests", "$name: subject recorded");
    Test::More::ok(defined redis('ZSCORE', 'mdm:scep:certs', $serial),
                   "$name: in the index");
    my $ttl = redis('TTL', "mdm:scep:cert:$serial");
    Test::More::ok($ttl > ($days + 29) * 86400
                   && $ttl <= ($days + 30) * 86400 + 60,
                   "$name: the record lives notAfter + 30 days ($ttl s)");

    return unless $o{checkin};

    # the new identity, through mdm_identity signature
    my $plist = plist_set(vector('nanomdm/mdm/testdata/Authenticate.2.plist'),
                         UDID => "SCEP-$name");
    $plist =~ s/^\s+|\s+\z//g;
    my $sig = mdm_signature($plist, { cert => $cert,
                                      key => "$t->{dir}/key.pem" });
    my $res = send_raw(http_request(PUT => '/mdm/checkin', $plist,
        [ 'Content-Type' => 'application/x-apple-aspen-mdm-checkin',
          'Mdm-Signature' => $sig ]));
    Test::More::is($res->{status}, 200,
                   "$name: the issued certificate checks in (Authenticate)");
}

our $AUTH = 'Basic ' . encode_base64('nanomdm:scep-api-key', '');

# POST /v1/challenge, then a PKCSReq with it (SUCCESS), then again (FAILURE)
sub api_challenge_flow {
    my ($body) = @_;
    my $j = JSON::PP::decode_json($body);
    Test::More::like($j->{challenge}, qr/^[A-Za-z0-9_-]{43}\z/,
                     'challenge: 32 random bytes, base64url, no padding');
    Test::More::is($j->{string}, $j->{challenge}, 'MicroMDM\'s "string"');
    Test::More::is($j->{expires_in}, 120, 'mdm_scep_challenge_ttl');
    my $ttl = redis('TTL', "mdm:scep:challenge:$j->{challenge}");
    Test::More::ok($ttl > 100 && $ttl <= 120, "stored with its TTL ($ttl)");
    my $res = send_raw(post_req('/scep', 'api1', 'device-api1',
                                $j->{challenge}, 'aes128', 'sha256'));
    Test::More::is($res->{status}, 200, 'PKCSReq with it');
    check_success('api1', $res->{body}, days => 30);
    $res = send_raw(post_req('/scep', 'api2', 'device-api2',
                             $j->{challenge}, 'aes128', 'sha256'));
    check_fail('api2', $res->{body}, 2);
}

# GET /v1/certificates with a query, as decoded JSON
sub certs {
    my ($query) = @_;
    my $res = send_raw(http_request(GET => "/v1/certificates$query", undef,
                                    [ Authorization => $AUTH ]));
    Test::More::is($res->{status}, 200, "GET /v1/certificates$query");
    return JSON::PP::decode_json($res->{body});
}

sub send_raw {
    my ($req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port(), Timeout => 10)
        or die "connect: $!";
    print {$s} $req;
    local $/;
    my $raw = <$s>;
    return parse_http_response($raw);
}

run_tests();

__DATA__

=== TEST 1: GetCACaps: POST, SHA-256, AES, SCEPStandard, and what older Apple clients need
--- request
GET /scep?operation=GetCACaps&message=
--- error_code: 200
--- response_headers
Content-Type: text/plain
--- response_body
POSTPKIOperation
SHA-1
SHA-256
SHA-512
AES
DES3
SCEPStandard
--- no_error_log
[error]



=== TEST 2: GetCACert without an RA: the CA certificate, DER
--- request
GET /scep?operation=GetCACert&message=MDM%20CA
--- error_code: 200
--- response_headers
Content-Type: application/x-x509-ca-cert
--- response_body eval
t::MDM::_pem_to_der(t::MDM::_slurp("$::Dir/ca.pem"))
--- no_error_log
[error]



=== TEST 3: GetCACert with an RA: RA and CA as a degenerate SignedData
--- request
GET /scep-ra?operation=GetCACert
--- error_code: 200
--- response_headers
Content-Type: application/x-x509-ca-ra-cert
--- after_each eval
sub {
    t::MDM::_spew("$::Dir/cacerts.der", $_[1]);
    my $out = t::MDM::_run('openssl', 'pkcs7', '-inform', 'DER', '-in',
                           "$::Dir/cacerts.der", '-print_certs', '-noout');
    Test::More::like($out, qr/subject=O = ngx_mdm tests, CN = SCEP RA/, 'RA');
    Test::More::like($out, qr/subject=O = ngx_mdm tests, CN = SCEP CA/, 'CA');
}
--- no_error_log
[error]



=== TEST 4: PKCSReq by POST, static challenge, AES-128 + SHA-256: SUCCESS, and the certificate checks in
--- raw_request eval
::post_req('/scep', 'post1', 'device-post1', 'static-secret', 'aes128', 'sha256')
--- error_code: 200
--- response_headers
Content-Type: application/x-pki-message
--- after_each eval
sub { ::check_success('post1', $_[1], days => 30, checkin => 1) }
--- error_log eval
[qr/task #\d+ added to thread pool "default"/,
 qr/mdm: SCEP issued serial \d+ to "CN=device-post1,O=ngx_mdm tests"/]
--- no_error_log
[error]



=== TEST 5: PKCSReq by POST, AES-256 + SHA-1: answered the same way
--- raw_request eval
::post_req('/scep', 'post2', 'device-post2', 'static-secret', 'aes256', 'sha1')
--- error_code: 200
--- after_each eval
sub { ::check_success('post2', $_[1], days => 30) }
--- no_error_log
[error]



=== TEST 6: PKCSReq by GET with literal "+" and "/", DES3 + SHA-1, thread pool off
--- raw_request eval
::get_req('/scep-inline', 'get1', 'device-get1', 'static-secret', 'des3', 'sha1')
--- error_code: 200
--- after_each eval
sub { ::check_success('get1', $_[1], days => 365) }
--- no_error_log
[error]
added to thread pool



=== TEST 7: PKCSReq by GET with literal "+", AES-128 + SHA-256, one-time challenge consumed; old index entries trimmed
--- redis_setup
SET mdm:scep:challenge:Onetime-abc_1 1796000000000 EX 3600
ZADD mdm:scep:certs 1000 ancient
--- raw_request eval
::get_req('/scep', 'ot1', 'device-ot1', 'Onetime-abc_1', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_success('ot1', $_[1], days => 30, checkin => 1) }
--- redis_check
EXISTS mdm:scep:challenge:Onetime-abc_1 => 0
ZSCORE mdm:scep:certs ancient => (nil)
--- no_error_log
[error]



=== TEST 8: the same one-time challenge again: FAILURE badRequest, one line
--- raw_request eval
::post_req('/scep', 'ot2', 'device-ot2', 'Onetime-abc_1', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('ot2', $_[1], 2) }
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*CertRep FAILURE \(badRequest\): wrong, used or expired challenge, transaction "[0-9a-f]{40}", subject "CN=device-ot2,O=ngx_mdm tests".*\n\z/]



=== TEST 9: an expired one-time challenge: FAILURE badRequest
--- redis_setup
SET mdm:scep:challenge:expired-1 1 PX 1
--- raw_request eval
::post_req('/scep', 'exp1', 'device-exp1', 'expired-1', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('exp1', $_[1], 2) }
--- error_log
wrong, used or expired challenge



=== TEST 10: a wrong challenge: FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'wrong1', 'device-wrong1', 'static-secreT', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('wrong1', $_[1], 2) }
--- error_log
wrong, used or expired challenge



=== TEST 11: no challenge at all: FAILURE badRequest, Redis not asked
--- raw_request eval
::post_req('/scep', 'none1', 'device-none1', '-', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('none1', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): no challengePassword



=== TEST 12: a byte of the signed message flipped: FAILURE badMessageCheck
--- raw_request eval
::post_req('/scep', 'tamper1', 'device-tamper1', 'static-secret', 'aes128', 'sha256', 'tamper')
--- error_code: 200
--- after_each eval
sub { ::check_fail('tamper1', $_[1], 1) }
--- error_log
CertRep FAILURE (badMessageCheck): the message signature does not verify



=== TEST 13: an envelope the CA cannot open: FAILURE badMessageCheck
--- raw_request eval
::post_req('/scep', 'recip1', 'device-recip1', 'static-secret', 'aes128', 'sha256', 'wrongrecip')
--- error_code: 200
--- after_each eval
sub { ::check_fail('recip1', $_[1], 1) }
--- error_log
CertRep FAILURE (badMessageCheck): cannot decrypt the envelope



=== TEST 14: a CSR whose signature is broken: FAILURE badMessageCheck
--- raw_request eval
::post_req('/scep', 'csrsig1', 'device-csrsig1', 'static-secret', 'aes128', 'sha256', 'badcsrsig')
--- error_code: 200
--- after_each eval
sub { ::check_fail('csrsig1', $_[1], 1) }
--- error_log
CertRep FAILURE (badMessageCheck): the certificate request's signature does not verify



=== TEST 15: a 1024-bit device key: FAILURE badAlg
--- raw_request eval
::post_req('/scep', 'small1', 'device-small1', 'static-secret', 'aes128', 'sha256', 'bits=1024')
--- error_code: 200
--- after_each eval
sub { ::check_fail('small1', $_[1], 0) }
--- error_log
CertRep FAILURE (badAlg): the device key is not RSA of mdm_scep_min_rsa_bits or more



=== TEST 16: a GetCertInitial (messageType 20): FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'poll1', 'device-poll1', 'static-secret', 'aes128', 'sha256', 'type=20')
--- error_code: 200
--- after_each eval
sub { ::check_fail('poll1', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): messageType is not PKCSReq (19)



=== TEST 16b: a RenewalReq (messageType 17): not served, FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'type17', 'device-type17', 'static-secret', 'aes128', 'sha256', 'type=17')
--- error_code: 200
--- after_each eval
sub { ::check_fail('type17', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): messageType is not PKCSReq (19)



=== TEST 16c: a GetCert (messageType 21): not served, FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'type21', 'device-type21', 'static-secret', 'aes128', 'sha256', 'type=21')
--- error_code: 200
--- after_each eval
sub { ::check_fail('type21', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): messageType is not PKCSReq (19)



=== TEST 16d: a GetCRL (messageType 22): not served, FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'type22', 'device-type22', 'static-secret', 'aes128', 'sha256', 'type=22')
--- error_code: 200
--- after_each eval
sub { ::check_fail('type22', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): messageType is not PKCSReq (19)



=== TEST 16e: mdm_scep_challenge_required off: a request without challengePassword is issued
--- raw_request eval
::post_req('/scep-open', 'open1', 'device-open1', '-', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_success('open1', $_[1]) }
--- no_error_log
[error]



=== TEST 16f: mdm_scep_challenge_required off: a challenge that is there is still checked (wrong: FAILURE badRequest)
--- raw_request eval
::post_req('/scep-open', 'open2', 'device-open2', 'not-a-challenge', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('open2', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): wrong, used or expired challenge



=== TEST 16g: by default a request without challengePassword is refused: FAILURE badRequest
--- raw_request eval
::post_req('/scep', 'open3', 'device-open3', '-', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_fail('open3', $_[1], 2) }
--- error_log
CertRep FAILURE (badRequest): no challengePassword



=== TEST 17: through the RA: encrypted to the RA, CertRep signed by the RA, certificate by the CA; static challenge from a file
--- raw_request eval
::post_req('/scep-ra', 'ra1', 'device-ra1', 'file-secret', 'aes256', 'sha256', 'ra')
--- error_code: 200
--- after_each eval
sub { ::check_success('ra1', $_[1], signer => "$::Dir/ra.pem", checkin => 1) }
--- no_error_log
[error]



=== TEST 18: the real PKCSReq (micromdm/scep, mdmclient 2016) decrypts with its CA; the CA expired in May 2026, so FAILURE badRequest naming the decrypted subject
--- config
location = /scep-vector {
    mdm_scep;
    # its key is encrypted with an empty passphrase, which loads
    mdm_scep_ca $TEST_NGINX_SCEP_VECTOR/testca/ca.pem
                $TEST_NGINX_SCEP_VECTOR/testca/ca.key;
    mdm_scep_challenge static-secret;
}
--- suppress_stderr
--- raw_request eval
http_request(POST => '/scep-vector?operation=PKIOperation',
             t::MDM::_slurp("$::Vec/PKCSReq.der"))
--- error_code: 200
--- after_each eval
sub {
    my $r = ::parse_rep(undef, $_[1], "$::Vec/testca/ca.pem");
    Test::More::is($r->{messageType}, '3', 'CertRep');
    Test::More::is($r->{pkiStatus}, '2', 'FAILURE');
    Test::More::is($r->{failInfo}, '2', 'badRequest');
    Test::More::is($r->{transactionID},
                   'A13090761A30F66664F85D37433D2065E1112BA1', 'transactionID');
    Test::More::is($r->{recipientNonce}, 'ae7fe8816cc6bedd',
                   'recipientNonce = the 8-byte senderNonce of the request');
    Test::More::is(lc $r->{digest}, 'sha1', 'answered with SHA-1 like the request');
}
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*CertRep FAILURE \(badRequest\): the CA certificate has expired, transaction "A13090761A30F66664F85D37433D2065E1112BA1", subject "CN=com\.apple\.security\.scep\.063D7953-1338-4BF0-8F99-913382996224".*\n\z/]



=== TEST 19: a garbage body: 400, one line
--- raw_request eval
http_request(POST => '/scep?operation=PKIOperation', "garbage\x00\x01" x 50)
--- error_code: 400
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*SCEP request refused \(400\): not a CMS SignedData message.*\n\z/]



=== TEST 20: a SignedData without the SCEP attributes: 400
--- raw_request eval
my $f = pki_dir() . '/scep/plain.der';
t::MDM::_run('openssl', 'cms', '-sign', '-binary', '-nodetach', '-outform', 'DER',
             '-in', "$::Dir/challenge", '-signer', "$::Dir/ca.pem",
             '-inkey', "$::Dir/ca.key", '-out', $f);
http_request(POST => '/scep?operation=PKIOperation', t::MDM::_slurp($f))
--- error_code: 400
--- error_log
SCEP request refused (400): no messageType, transactionID or senderNonce



=== TEST 21: GET with a message that is not base64: 400
--- request
GET /scep?operation=PKIOperation&message=@@@@
--- error_code: 400
--- error_log
SCEP request refused (400): the message is not base64



=== TEST 22: an empty POST: 400, one line
--- request
POST /scep?operation=PKIOperation
--- more_headers
Content-Length: 0
--- error_code: 400
--- grep_error_log eval: qr/\[error\].*/
--- grep_error_log_out eval
[qr/^.*SCEP request refused \(400\): empty body,.*\n\z/]



=== TEST 22b: GET PKIOperation without a message: 400
--- request
GET /scep?operation=PKIOperation&message=
--- error_code: 400
--- error_log
SCEP request refused (400): PKIOperation without a message



=== TEST 22c: an unknown operation (GetNextCACert is not offered): 400
--- request
GET /scep?operation=GetNextCACert
--- error_code: 400
--- error_log
SCEP request refused (400): unknown "operation"



=== TEST 22d: no operation: 400
--- request
GET /scep
--- error_code: 400
--- error_log
SCEP request refused (400): no "operation" argument



=== TEST 22e: PUT: 405
--- request
PUT /scep?operation=GetCACaps
x
--- error_code: 405
--- error_log
SCEP request refused (405): method is not GET or POST



=== TEST 23: serials are unique and increasing (INCR mdm:scep:serial)
--- raw_request eval
::post_req('/scep', 'serial1', 'device-serial1', 'static-secret', 'aes128', 'sha256')
--- error_code: 200
--- after_each eval
sub { ::check_success('serial1', $_[1], days => 30) }
--- redis_check eval
[ [ 'GET mdm:scep:serial', sub { $_[0] >= 6 } ],
  [ 'ZCARD mdm:scep:certs', sub { $_[0] == redis('GET', 'mdm:scep:serial') } ] ]
--- no_error_log
[error]



=== TEST 24: POST /v1/challenge: a one-time challenge that issues once
--- request
POST /v1/challenge
--- more_headers eval
"Authorization: $::AUTH"
--- error_code: 200
--- response_headers
Content-Type: application/json
--- after_each eval
sub { ::api_challenge_flow($_[1]) }



=== TEST 25: GET /v1/certificates: everything, by subject, by expiry, paged
--- request
GET /v1/certificates
--- more_headers eval
"Authorization: $::AUTH"
--- error_code: 200
--- after_each eval
sub {
    my $all = JSON::PP::decode_json($_[1]);
    my @c = @{ $all->{certificates} };
    Test::More::cmp_ok(scalar @c, '>=', 7, 'every issued certificate');
    my ($api1) = grep { $_->{subject} eq 'CN=device-api1,O=ngx_mdm tests' } @c;
    Test::More::ok($api1 && $api1->{serial} =~ /^\d+\z/
                   && $api1->{sha256} =~ /^[0-9a-f]{64}\z/
                   && $api1->{not_after} > time + 29 * 86400
                   && $api1->{issued_at} > (time - 600) * 1000,
                   'serial, subject, not_after, sha256, issued_at');
    my @s = @{ ::certs('?subject=device-api1')->{certificates} };
    Test::More::is(scalar @s, 1, 'subject filter');
    @s = @{ ::certs('?subject=no-such-device')->{certificates} };
    Test::More::is(scalar @s, 0, 'subject filter, no match');
    my $soon = time + 40 * 86400;
    @s = @{ ::certs("?expiring_before=$soon")->{certificates} };
    Test::More::ok(@s && !grep({ $_->{not_after} >= $soon } @s)
                   && !grep({ $_->{subject} =~ /device-get1/ } @s),
                   'expiring_before: the 30-day ones, not the 365-day one');
    my @t = @{ ::certs("?cert_expires_before=$soon")->{certificates} };
    Test::More::ok(@t && @t == @s,
                   'cert_expires_before, the name GET /v1/enrollments takes: the same');
    @t = @{ ::certs('?cert_expires_before=' . (time - 86400))->{certificates} };
    Test::More::is(scalar @t, 0, 'cert_expires_before yesterday: none');
    my $p1 = ::certs('?limit=2');
    Test::More::is(scalar @{ $p1->{certificates} }, 2, 'limit');
    my $p2 = ::certs("?limit=2&cursor=$p1->{next_cursor}");
    Test::More::isnt($p2->{certificates}[0]{serial},
                     $p1->{certificates}[0]{serial}, 'next page');
}



=== TEST 26: GET /v1/certificates with bad arguments: 400; GET /v1/challenge: 405
--- request eval
["GET /v1/certificates?expiring_before=tomorrow", "GET /v1/certificates?limit=0",
 "GET /v1/challenge", "GET /v1/certificates?cert_expires_before=tomorrow"]
--- more_headers eval
["Authorization: $::AUTH", "Authorization: $::AUTH", "Authorization: $::AUTH",
 "Authorization: $::AUTH"]
--- error_code eval
[400, 400, 405, 400]
--- response_body_like eval
[qr/"error"/, qr/"error"/, qr/challenge takes POST/,
 qr/cert_expires_before \(unix seconds\)/]



=== TEST 27: POST /v1/challenge without credentials: 401, no challenge stored
--- request
POST /v1/challenge
--- error_code: 401
--- redis_check eval
[ [ 'KEYS mdm:scep:challenge:*', sub { !@{ $_[0] } } ] ]



=== TEST 28: Redis down: 503 and one line, no certificate
--- redis_setup eval
sub { redis_stop() }
--- raw_request eval
::post_req('/scep', 'down1', 'device-down1', 'static-secret', 'aes128', 'sha256')
--- error_code: 503
--- error_log
SCEP request refused (503): redis is not connected



=== TEST 29: mdm_scep without mdm_scep_ca stops nginx
--- config
location = /s { mdm_scep; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_scep needs "mdm_scep_ca CERT KEY"/



=== TEST 30: a CA key that is not the certificate's stops nginx
--- config
location = /s { mdm_scep; mdm_scep_ca $TEST_NGINX_SCEP/ca.pem $TEST_NGINX_SCEP/ra.key; }
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_scep_ca: the key ".*ra\.key" is not the key of ".*ca\.pem"/



=== TEST 31: a static challenge over 255 bytes stops nginx
--- config eval
"location = /s { mdm_scep; mdm_scep_ca \$TEST_NGINX_SCEP/ca.pem \$TEST_NGINX_SCEP/ca.key; mdm_scep_challenge " . ('x' x 256) . "; }"
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*mdm_scep_challenge is over 255 bytes/
