# The DEP admin API (issue 11, contracts D1-D3): /v1/dep/tokenpki, tokens,
# config, assigner, dep_names, sync, status, devices. NanoDEP's endpoints
# and shapes under /v1/dep/.
#
# Token files are made here with `openssl cms -encrypt -stream`, as Apple's
# portal makes them: MIME headers + base64 of indefinite-length BER, the
# plain text again MIME headers and the JSON hard-wrapped at 78 columns
# (inside strings), with and without BEGIN/END MESSAGE lines. The worker's
# state (D2: status, cursor, devices) is seeded straight into Redis, as the
# worker writes it.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use JSON::PP ();
use MIME::Base64 ();

no_shuffle();

# ---------------------------------------------------------------------------
# Token files, as Apple's portal makes them
# ---------------------------------------------------------------------------

my $N = 0;

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print {$fh} $data;
    close $fh;
}

sub run_ok {
    my ($cmd) = @_;
    system("$cmd 2>/dev/null") == 0 or die "failed: $cmd\n";
}

# an RSA-2048 key and a self-signed certificate, as files and PEM
sub dep_pki {
    my ($name) = @_;
    my $d = pki_dir();
    my ($k, $c) = ("$d/dep-$name.key", "$d/dep-$name.pem");
    run_ok("openssl req -x509 -newkey rsa:2048 -nodes -keyout $k -out $c "
           . "-days 30 -subj /CN=test-$name");
    return { key => slurp($k), cert => slurp($c), key_file => $k,
             cert_file => $c };
}

# NanoDEP's OAuth JSON (Apple's sample values)
sub dep_tokens {
    my (%o) = @_;
    return JSON::PP->new->canonical->encode({
        consumer_key => $o{ck} // 'CK_48dd68d198350f51258e885ce9a5c37ab7f98543c4a697323d75682a6c10a32501cb247e3db08105db868f73f2c972bdb6ae77112aea803b9219eb52689d42e6',
        consumer_secret => 'CS_34c7b2b531a600d99a0e4edcf4a78ded79b86ef318118c2f5bcfee1b011108c32d5302df801adbe29d446eb78f02b13144e323eb9aad51c79f01e50cb45c3a68',
        access_token => 'AT_927696831c59ba510cfe4ec1a69e5267c19881257d4bca2906a99d0785b785a6f6fdeb09774954fdd5e2d0ad952e3af52c6d8d2f21c924ba0caf4a031c158b89',
        access_secret => 'AS_c31afd7a09691d83548489336e8ff1cb11b82b6bca13f793344496a556b1f4972eaff4dde6deb5ac9cf076fdfa97ec97699c34d515947b9cf9ed31c99dded6ba',
        access_token_expiry => $o{expiry} // '2027-06-01T05:59:16Z',
        %{ $o{extra} // {} },
    });
}

# Apple's decrypted text: MIME headers, a blank line, the JSON wrapped at
# 78 columns with CRLF (inside strings too), optionally between BEGIN/END
# MESSAGE lines
sub dep_plain {
    my ($json, %o) = @_;
    my $body = join "\r\n", unpack('(a78)*', $json);
    $body = "-----BEGIN MESSAGE-----\r\n$body\r\n-----END MESSAGE-----"
        if $o{begin};
    return "Content-Type: text/plain;charset=UTF-8\r\n"
         . "Content-Transfer-Encoding: 7bit\r\n\r\n$body\r\n";
}

# `openssl cms -encrypt -stream` (indefinite-length BER) to a certificate:
# smime (MIME headers + base64), der (raw BER), pem, apple (Apple's four
# headers + base64 at 76 columns), b64 (base64 alone)
sub dep_p7m {
    my ($plain, $cert_file, $form) = @_;
    $form //= 'smime';
    my $d = pki_dir();
    my $n = ++$N;
    my ($in, $out) = ("$d/dep-plain-$n.txt", "$d/dep-$n.p7m");
    spew($in, $plain);
    my $of = { smime => 'SMIME', der => 'DER', pem => 'PEM', apple => 'DER',
               b64 => 'DER' }->{$form} or die "dep_p7m: form $form\n";
    run_ok("openssl cms -encrypt -stream -aes-128-cbc -binary -in $in "
           . "-recip $cert_file -outform $of -out $out");
    my $data = slurp($out);
    if ($form eq 'apple') {
        die "not BER\n" unless substr($data, 0, 2) eq "\x30\x80";
        return qq{Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\r\n}
             . qq{Content-Transfer-Encoding: base64\r\n}
             . qq{Content-Disposition: attachment; filename="smime.p7m"\r\n}
             . qq{Content-Description: S/MIME Encrypted Message\r\n\r\n}
             . MIME::Base64::encode_base64($data, "\r\n");
    }
    return MIME::Base64::encode_base64($data) if $form eq 'b64';
    return $data;
}

# the subject, key usage, key size and validity of a PEM certificate
sub cert_text {
    my ($pem) = @_;
    my $f = pki_dir() . "/dep-got-" . ++$N . ".pem";
    spew($f, $pem);
    return scalar `openssl x509 -in $f -noout -text 2>/dev/null`;
}

sub days_valid {
    my ($pem) = @_;
    my $f = pki_dir() . "/dep-got-" . ++$N . ".pem";
    spew($f, $pem);
    my ($nb) = `openssl x509 -in $f -noout -startdate` =~ /=(.*)/;
    my ($na) = `openssl x509 -in $f -noout -enddate` =~ /=(.*)/;
    my $d = (`date -u -d "$na" +%s` - `date -u -d "$nb" +%s`) / 86400;
    return sprintf('%.0f', $d);
}

our $ACME = dep_pki('acme');
our $OTHER = dep_pki('other');
our $TOK = dep_tokens();
our $TOK_B = dep_tokens(ck => 'CK_second', expiry => '2028-01-02T03:04:05Z');
our %TOK = %{ JSON::PP->new->decode($TOK) };

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(dep_pki dep_tokens dep_plain dep_p7m cert_text days_valid);
}

api_defaults('dep-key');

run_tests();

__DATA__

=== TEST 1: GET tokenpki: an RSA-2048 key and a self-signed certificate made on the first call, kept in Redis (D1)
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request
GET /v1/dep/tokenpki/acme
--- error_code: 200
--- response_headers
Content-Type: application/x-pem-file
Content-Disposition: attachment; filename="acme.pem"
--- response_body_like eval
qr/\A-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+\/=\n]+-----END CERTIFICATE-----\n\z/
--- after_each eval
sub {
    my ($block, $body) = @_;
    my $t = cert_text($body);
    Test::More::like($t, qr/Subject: CN\s*=\s*ngx_mdm\b/, "default CN");
    Test::More::like($t, qr/Public-Key: \(2048 bit\)/, "RSA 2048");
    Test::More::like($t, qr/Key Usage: critical\s+Digital Signature, Key Encipherment/, "key usage");
    Test::More::is(days_valid($body), 365, "365 days by default");
    Test::More::is(redis('HGET', 'mdm:dep:acme:tokenpki', 'cert'), $body, "the answer is the stored certificate");
    my $again = api('GET', '/v1/dep/tokenpki/acme?cn=other&validity_days=2');
    Test::More::is($again->{body}, $body, "a second GET answers the same certificate");
}
--- redis_check eval
[ [ "HEXISTS mdm:dep:acme:tokenpki key", "1" ],
  [ "HGET mdm:dep:acme:tokenpki key", qr/\A-----BEGIN PRIVATE KEY-----\n/ ],
  [ "HGET mdm:dep:acme:tokenpki created_at", qr/^\d{13}$/ ],
  [ "SMEMBERS mdm:dep:names", [ "acme" ] ],
  [ "EXISTS mdm:dep:acme:tokens", "0" ] ]
--- log_level: debug
--- error_log eval
qr/task #\d+ added to thread pool "default"/
--- no_error_log
[error]



=== TEST 2: GET tokenpki with cn and validity_days
--- request
GET /v1/dep/tokenpki/school-2?cn=My%20MDM%20server&validity_days=30
--- error_code: 200
--- after_each eval
sub {
    my ($block, $body) = @_;
    Test::More::like(cert_text($body), qr/Subject: CN\s*=\s*My MDM server\b/, "the CN asked for");
    Test::More::is(days_valid($body), 30, "30 days");
}



=== TEST 3: cn and validity_days out of range: 400, nothing made
--- request eval
[ "GET /v1/dep/tokenpki/bad?validity_days=0", "GET /v1/dep/tokenpki/bad?validity_days=3651",
  "GET /v1/dep/tokenpki/bad?validity_days=x", "GET /v1/dep/tokenpki/bad?cn=" . ("a" x 65),
  "GET /v1/dep/tokenpki/bad?cn=a%0Ab" ]
--- error_code eval
[ (400) x 5 ]
--- json eval
[ (exact({ error => "validity_days is 1 to 3650" })) x 3,
  (exact({ error => "cn is 1 to 64 printable ASCII characters" })) x 2 ]
--- redis_check eval
[ [ "EXISTS mdm:dep:bad:tokenpki", "0" ] ]



=== TEST 4: two nodes (here: 8 clients) racing for the first key keep one, and all answer it
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my @r = @{ concurrent_requests(main::server_port(),
        [ map { http_request('GET', '/v1/dep/tokenpki/race', undef, [ split /:\s*/, $::AUTH, 2 ]) } 1 .. 8 ]) };
    my %bodies;
    for my $r (@r) {
        Test::More::is($r->{status}, 200, "status 200");
        $bodies{$r->{body}}++;
    }
    Test::More::is(scalar keys %bodies, 1, "one certificate for all");
    Test::More::is((keys %bodies)[0], redis('HGET', 'mdm:dep:race:tokenpki', 'cert'), "the stored one");
}



=== TEST 5: the round trip: the certificate of GET, a token file encrypted to it by "Apple", PUT: the tokens are stored, the answer has no secret
--- request
GET /v1/dep/tokenpki/trip
--- error_code: 200
--- after_each eval
sub {
    my ($block, $body) = @_;
    my $cf = t::MDM::pki_dir() . "/dep-trip.pem";
    main::spew($cf, $body);
    redis('SET', 'mdm:dep:trip:session', 'old-session');
    redis('HSET', 'mdm:dep:trip:status', 'stopped', '1', 'stop_reason', 'T_C_NOT_SIGNED', 'last_result', 'error');
    my $r = api('PUT', '/v1/dep/tokenpki/trip', dep_p7m(dep_plain($::TOK), $cf, 'apple'));
    Test::More::is($r->{status}, 200, "PUT answered 200") or Test::More::diag($r->{body});
    Test::More::is_deeply($r->{json}, { dep_name => 'trip', consumer_key => $::TOK{consumer_key},
                                        access_token_expiry => '2027-06-01T05:59:16Z' },
                          "consumer key and expiry, no secret");
    Test::More::unlike($r->{body}, qr/CS_|AT_|AS_/, "no secret in the answer");
    Test::More::is_deeply(JSON::PP->new->decode(redis('GET', 'mdm:dep:trip:tokens')), \%::TOK, "tokens stored");
    Test::More::is(redis('EXISTS', 'mdm:dep:trip:session'), 0, "D1: the session is dropped");
    Test::More::is_deeply([ sort @{ redis('HKEYS', 'mdm:dep:trip:status') } ], [ 'last_result' ], "D1: stopped and stop_reason lifted");
    Test::More::is(redis('SISMEMBER', 'mdm:dep:syncnow', 'trip'), 1, "D1: a sync is asked for");
}



=== TEST 6: every form of the token file: S/MIME (BER), Apple's headers, with and without BEGIN MESSAGE, raw BER, PEM, bare base64
--- redis_setup eval
[ [ "FLUSHALL" ],
  [ "HSET", "mdm:dep:acme:tokenpki", "cert", $::ACME->{cert}, "key", $::ACME->{key}, "created_at", "1" ] ]
--- request eval
[ "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}, 'smime'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK, begin => 1), $::ACME->{cert_file}, 'smime'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}, 'apple'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK, begin => 1), $::ACME->{cert_file}, 'apple'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}, 'der'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}, 'pem'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}, 'b64'),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m($::TOK, $::ACME->{cert_file}, 'smime') ]
--- error_code eval
[ (200) x 8 ]
--- json eval
[ (exact({ dep_name => "acme", consumer_key => $::TOK{consumer_key}, access_token_expiry => "2027-06-01T05:59:16Z" })) x 8 ]
--- redis_check eval
[ [ "GET mdm:dep:acme:tokens", sub { JSON::PP->new->canonical->encode(JSON::PP->new->decode($_[0])) eq $::TOK } ],
  [ "SMEMBERS mdm:dep:names", [ "acme" ] ] ]
--- no_error_log
[error]



=== TEST 7: a token for another consumer key: 409 unless force=1; force=2 is a 400
--- request eval
[ "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK_B), $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme?force=2\n" . dep_p7m(dep_plain($::TOK_B), $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme?force=1\n" . dep_p7m(dep_plain($::TOK_B), $::ACME->{cert_file}) ]
--- error_code eval
[ 409, 400, 200 ]
--- json eval
[ exact({ error => qr/^the token is for consumer key CK_second but DEP name acme has CK_48dd.*force=1/ }),
  exact({ error => "force is 1, true, yes, 0, false or no" }),
  exact({ dep_name => "acme", consumer_key => "CK_second", access_token_expiry => "2028-01-02T03:04:05Z" }) ]
--- redis_check eval
[ [ "GET mdm:dep:acme:tokens", qr/"consumer_key":"CK_second"/ ] ]



=== TEST 8: a token file for another key, a file that is none, an empty body, a name without key: clear 4xx, one line each
--- request eval
[ "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain($::TOK), $::OTHER->{cert_file}),
  "PUT /v1/dep/tokenpki/acme\nContent-Type: application/pkcs7-mime\r\n\r\nbm90IGEgY21z\r\n",
  "PUT /v1/dep/tokenpki/acme\nhello",
  "PUT /v1/dep/tokenpki/acme\n",
  "PUT /v1/dep/tokenpki/nokey\n" . dep_p7m(dep_plain($::TOK), $::ACME->{cert_file}) ]
--- error_code eval
[ 400, 400, 400, 400, 404 ]
--- json eval
[ exact({ error => qr{^the token file is not encrypted to this DEP name's key: upload the certificate of GET /v1/dep/tokenpki/NAME} }),
  (exact({ error => "the body is not a token file: S/MIME (.p7m), DER or PEM CMS expected" })) x 2,
  exact({ error => "the body is empty: the token file (.p7m) expected" }),
  exact({ error => qr{^DEP name nokey has no key: GET /v1/dep/tokenpki/nokey first} }) ]
--- log_level: info
--- grep_error_log eval
qr/\[(?:info|error|warn)\].*(?:mdm|DEP).*/
--- grep_error_log_out eval
qr/\A\[info\] [^\n]*answered 40[04]: [^\n]*\n\z/
--- redis_check eval
[ [ "GET mdm:dep:acme:tokens", qr/"consumer_key":"CK_second"/ ] ]



=== TEST 9: decrypted content that is no token: not JSON, JSON without a field, a bad expiry, BEGIN without END
--- request eval
[ "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain("{not json"), $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain('{"consumer_key":"CK_x"}'), $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m(dep_plain(dep_tokens(expiry => "nextyear")), $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m("-----BEGIN MESSAGE-----\r\n$::TOK\r\n", $::ACME->{cert_file}),
  "PUT /v1/dep/tokenpki/acme\n" . dep_p7m("just words\r\n", $::ACME->{cert_file}) ]
--- error_code eval
[ (400) x 5 ]
--- json eval
[ exact({ error => "the decrypted token is not a JSON object" }),
  exact({ error => "the tokens have no consumer_secret string" }),
  exact({ error => qr/^access_token_expiry is not an RFC 3339 time/ }),
  exact({ error => qr/^the decrypted token has -----BEGIN MESSAGE----- and no -----END MESSAGE-----/ }),
  exact({ error => "the decrypted token is neither JSON nor MIME text" }) ]
--- redis_check eval
[ [ "GET mdm:dep:acme:tokens", qr/"consumer_key":"CK_second"/ ] ]



=== TEST 10: a token file over 64 KB: 413
--- request eval
"PUT /v1/dep/tokenpki/acme\n" . ("A" x 70000)
--- error_code: 413
--- json eval
exact({ error => "the body is too large for a token file (64 KB at most)" })



=== TEST 11: DELETE tokenpki forgets the key, not the tokens; the next GET makes another
--- request eval
[ "DELETE /v1/dep/tokenpki/acme", "DELETE /v1/dep/tokenpki/acme", "GET /v1/dep/tokenpki/acme" ]
--- error_code eval
[ 200, 404, 200 ]
--- json eval
[ exact({ dep_name => "acme", deleted => JSON::PP::true }), exact({ error => "DEP name acme has no key" }), undef ]
--- redis_check eval
[ [ "HGET mdm:dep:acme:tokenpki cert", sub { $_[0] ne $::ACME->{cert} && $_[0] =~ /BEGIN CERTIFICATE/ } ],
  [ "EXISTS mdm:dep:acme:tokens", "1" ] ]



=== TEST 12: PUT and GET tokens (NanoDEP's raw OAuth JSON): stored as the five fields, D1 side effects
--- redis_setup eval
[ [ "FLUSHALL" ], [ "SET", "mdm:dep:raw:session", "s" ], [ "HSET", "mdm:dep:raw:status", "stopped", "1", "stop_reason", "x", "devices", "3" ] ]
--- request eval
[ "PUT /v1/dep/tokens/raw\n" . dep_tokens(extra => { other => "dropped" }), "GET /v1/dep/tokens/raw" ]
--- error_code eval
[ 200, 200 ]
--- json eval
[ exact({ %::TOK }), exact({ %::TOK }) ]
--- redis_check eval
[ [ "GET mdm:dep:raw:tokens", sub { JSON::PP->new->canonical->encode(JSON::PP->new->decode($_[0])) eq $::TOK } ],
  [ "EXISTS mdm:dep:raw:session", "0" ],
  [ "HGETALL mdm:dep:raw:status", [ "devices", "3" ] ],
  [ "SISMEMBER mdm:dep:syncnow raw", "1" ],
  [ "SISMEMBER mdm:dep:names raw", "1" ] ]



=== TEST 13: tokens that are not: bad JSON, not an object, a field missing or empty or not a string, a bad expiry, control bytes; 409 for another consumer key
--- request eval
[ "PUT /v1/dep/tokens/raw\n{\"consumer_key\":",
  "PUT /v1/dep/tokens/raw\n[1,2]",
  "PUT /v1/dep/tokens/raw\n{\"consumer_key\":\"CK_a\"}",
  "PUT /v1/dep/tokens/raw\n" . dep_tokens(extra => { access_secret => "" }),
  "PUT /v1/dep/tokens/raw\n" . dep_tokens(extra => { access_token => 5 }),
  "PUT /v1/dep/tokens/raw\n" . dep_tokens(expiry => "2027-06-01"),
  "PUT /v1/dep/tokens/raw\n" . dep_tokens(extra => { consumer_secret => "CS a" }),
  "PUT /v1/dep/tokens/raw\n" . dep_tokens(ck => "CK_other"),
  "GET /v1/dep/tokens/none",
  "POST /v1/dep/tokens/raw\n{}" ]
--- error_code eval
[ (400) x 7, 409, 404, 405 ]
--- json eval
[ exact({ error => "the body is not JSON (line 1, column 16)" }),
  exact({ error => "the tokens are not a JSON object" }),
  exact({ error => "the tokens have no consumer_secret string" }),
  exact({ error => "the tokens have no access_secret string" }),
  exact({ error => "the tokens have no access_token string" }),
  exact({ error => qr/^access_token_expiry is not an RFC 3339 time/ }),
  exact({ error => "a token field has a byte that is not printable ASCII" }),
  exact({ error => qr/^the token is for consumer key CK_other but DEP name raw has CK_48/ }),
  exact({ error => "DEP name none has no tokens" }),
  exact({ error => "DEP tokens take GET or PUT" }) ]
--- redis_check eval
[ [ "GET mdm:dep:raw:tokens", sub { JSON::PP->new->canonical->encode(JSON::PP->new->decode($_[0])) eq $::TOK } ] ]



=== TEST 14: config: Apple's base URL by default, a simulator's when set (trailing slash dropped), null puts Apple's back
--- request eval
[ "GET /v1/dep/config/raw",
  "PUT /v1/dep/config/raw\n{\"base_url\": \"http://127.0.0.1:8080/\"}",
  "GET /v1/dep/config/raw",
  "PUT /v1/dep/config/raw\n{\"base_url\": \"https://[::1]:9443/dep/v1\"}",
  "PUT /v1/dep/config/raw\n{\"base_url\": null}",
  "GET /v1/dep/config/unknown" ]
--- error_code eval
[ 200, 200, 200, 200, 200, 404 ]
--- json eval
[ exact({ base_url => "https://mdmenrollment.apple.com" }),
  exact({ base_url => "http://127.0.0.1:8080" }),
  exact({ base_url => "http://127.0.0.1:8080" }),
  exact({ base_url => "https://[::1]:9443/dep/v1" }),
  exact({ base_url => "https://mdmenrollment.apple.com" }),
  exact({ error => "unknown DEP name unknown" }) ]
--- redis_check eval
[ [ "HEXISTS mdm:dep:raw:config base_url", "0" ] ]



=== TEST 15: config that is not: other schemes, no host, a port out of range, spaces, a query, a user, not a string, not JSON
--- request eval
[ map { "PUT /v1/dep/config/raw\n{\"base_url\": $_}" }
  '"ftp://x"', '"http://"', '"http://h:0"', '"http://h:65536"', '"http://a b"', '"http://h/?q=1"',
  '"http://u@h"', '"h:80"', '5', '"http://h:80x"' ]
--- error_code eval
[ (400) x 10 ]
--- json eval
[ (exact({ error => qr/^base_url is http:\/\/ or https:\/\// })) x 8,
  exact({ error => qr/^the config is \{"base_url"/ }),
  exact({ error => qr/^base_url is http/ }) ]
--- redis_check eval
[ [ "HEXISTS mdm:dep:raw:config base_url", "0" ] ]



=== TEST 16: assigner: ?profile_uuid= as NanoDEP takes it, or a JSON body; GET answers it, {} without; DELETE stops assigning
--- request eval
[ "GET /v1/dep/assigner/raw",
  "PUT /v1/dep/assigner/raw?profile_uuid=48E4F9B0DB9B76F1\n",
  "GET /v1/dep/assigner/raw",
  "PUT /v1/dep/assigner/raw\n{\"profile_uuid\": \"9D6B-42\"}",
  "DELETE /v1/dep/assigner/raw",
  "GET /v1/dep/assigner/raw",
  "PUT /v1/dep/assigner/raw\n",
  "PUT /v1/dep/assigner/raw?profile_uuid=a%20b\n",
  "GET /v1/dep/assigner/unknown" ]
--- error_code eval
[ 200, 200, 200, 200, 200, 200, 400, 400, 404 ]
--- json eval
[ exact({}),
  exact({ profile_uuid => "48E4F9B0DB9B76F1", updated_at => num(qr/^\d{13}$/) }),
  exact({ profile_uuid => "48E4F9B0DB9B76F1", updated_at => num(qr/^\d{13}$/) }),
  exact({ profile_uuid => "9D6B-42", updated_at => num() }),
  exact({}), exact({}),
  (exact({ error => qr/^the assigner needs \?profile_uuid=/ })) x 2,
  exact({ error => "unknown DEP name unknown" }) ]
--- redis_check eval
[ [ "EXISTS mdm:dep:raw:assigner", "0" ] ]



=== TEST 17: dep_names: NanoDEP's {"dep_names": [...]}, sorted, filtered by dep_name=, paged
--- redis_setup eval
[ [ "FLUSHALL" ], [ "SADD", "mdm:dep:names", "zeta", "alpha", "mid.1", "b_2" ] ]
--- request eval
[ "GET /v1/dep/dep_names", "GET /v1/dep/dep_names?dep_name=zeta&dep_name=nope&dep_name=alpha&dep_name=zeta",
  "GET /v1/dep/dep_names?limit=3", "GET /v1/dep/dep_names?limit=3&cursor=3",
  "GET /v1/dep/dep_names?dep_name=bad!", "GET /v1/dep/dep_names?cursor=x", "GET /v1/dep/dep_names/x",
  "POST /v1/dep/dep_names\n{}" ]
--- error_code eval
[ 200, 200, 200, 200, 400, 400, 404, 405 ]
--- json eval
[ exact({ dep_names => [ "alpha", "b_2", "mid.1", "zeta" ] }),
  exact({ dep_names => [ "alpha", "zeta" ] }),
  exact({ dep_names => [ "alpha", "b_2", "mid.1" ], next_cursor => "3" }),
  exact({ dep_names => [ "zeta" ] }),
  exact({ error => "dep_name is a DEP name, at most 100 of them" }),
  exact({ error => "cursor is one a previous page answered, limit 1 to 1000" }),
  exact({ error => qr/^unknown DEP endpoint/ }),
  exact({ error => "dep_names takes GET" }) ]
--- no_error_log
header already sent



=== TEST 18: sync now (D3): SADD mdm:dep:syncnow; unknown name 404, no tokens 409, GET 405
--- redis_setup eval
[ [ "FLUSHALL" ], [ "SADD", "mdm:dep:names", "acme", "empty" ], [ "SET", "mdm:dep:acme:tokens", $::TOK ] ]
--- request eval
[ "POST /v1/dep/sync/acme\n", "POST /v1/dep/sync/nope\n", "POST /v1/dep/sync/empty\n", "GET /v1/dep/sync/acme" ]
--- error_code eval
[ 202, 404, 409, 405 ]
--- json eval
[ exact({ dep_name => "acme", sync => "queued" }), exact({ error => "unknown DEP name nope" }),
  exact({ error => "DEP name empty has no tokens yet: nothing to sync" }), exact({ error => "DEP sync takes POST" }) ]
--- redis_check eval
[ [ "SMEMBERS mdm:dep:syncnow", [ "acme" ] ] ]



=== TEST 19: status: the worker's hash (D2) with numbers as numbers, the token's expiry, the cursor's age
--- redis_setup eval
sub {
    my $now = int(Time::HiRes::time() * 1000);
    redis('FLUSHALL');
    redis('SADD', 'mdm:dep:names', 'acme', 'bare');
    redis('SET', 'mdm:dep:acme:tokens', dep_tokens(expiry => '2030-01-01T00:00:00Z'));
    redis('SET', 'mdm:dep:acme:cursor', 'MTIzNDU2');
    redis('SET', 'mdm:dep:acme:session', 'sess');
    redis('HSET', 'mdm:dep:acme:status', 'last_sync_at', $now - 5000, 'last_result', 'error',
          'last_error', 'T_C_NOT_SIGNED', 'cursor_at', $now - 120000, 'token_expiry', '2030-01-01T00:00:00Z',
          'stopped', '1', 'stop_reason', 'T_C_NOT_SIGNED', 'devices', '42', 'phase', 'idle',
          'next_sync_at', $now + 60000);
    redis('HSET', 'mdm:dep:acme:assigner', 'profile_uuid', 'P1', 'updated_at', $now);
    redis('HSET', 'mdm:dep:acme:config', 'base_url', 'http://127.0.0.1:9');
    redis('ZADD', 'mdm:dep:acme:serials', 1, 'S1', 2, 'S2');
}
--- request eval
[ "GET /v1/dep/status/acme", "GET /v1/dep/status/bare", "GET /v1/dep/status/none" ]
--- error_code eval
[ 200, 200, 404 ]
--- json eval
[ exact({ dep_name => "acme", last_sync_at => num(), last_result => "error", last_error => "T_C_NOT_SIGNED",
          cursor_at => num(), token_expiry => "2030-01-01T00:00:00Z", stopped => JSON::PP::true,
          stop_reason => "T_C_NOT_SIGNED", devices => num(42), phase => "idle", next_sync_at => num(),
          tokens => JSON::PP::true, consumer_key => $::TOK{consumer_key},
          access_token_expiry => "2030-01-01T00:00:00Z",
          token_expires_in_days => num(sub { $_[0] > 365 && $_[0] < 2000 }), token_expired => JSON::PP::false,
          tokenpki => JSON::PP::false, cursor => JSON::PP::true, cursor_age_seconds => num(sub { $_[0] >= 119 && $_[0] <= 130 }),
          session => JSON::PP::true, sync_queued => JSON::PP::false, base_url => "http://127.0.0.1:9",
          profile_uuid => "P1", devices_known => num(2) }),
  exact({ dep_name => "bare", stopped => JSON::PP::false, tokens => JSON::PP::false, tokenpki => JSON::PP::false,
          cursor => JSON::PP::false, session => JSON::PP::false, sync_queued => JSON::PP::false,
          base_url => "https://mdmenrollment.apple.com", devices_known => num(0) }),
  exact({ error => "unknown DEP name none" }) ]



=== TEST 20: devices: the worker's records (D2), oldest change first, paged, filtered by serial, profile_status, op_type
--- redis_setup eval
sub {
    redis('FLUSHALL');
    redis('SADD', 'mdm:dep:names', 'acme');
    my @d = ([ 'C02A', 'empty', 'added' ], [ 'C02B', 'assigned', 'modified' ], [ 'C02C', 'pushed', 'added' ],
             [ 'C02D', 'removed', 'modified' ], [ 'C02E', 'assigned', 'deleted' ]);
    my $i = 0;
    for my $d (@d) {
        $i++;
        redis('ZADD', 'mdm:dep:acme:serials', 1000 + $i, $d->[0]);
        redis('HSET', "mdm:dep:acme:dev:$d->[0]", 'serial_number', $d->[0], 'model', 'MacBook Air',
              'os', 'OSX', 'device_family', 'Mac', 'profile_status', $d->[1], 'op_type', $d->[2],
              'op_date', '2026-11-30T10:00:00Z', 'assign_result', 'SUCCESS', 'assign_at', 1700000000000 + $i,
              'updated_at', 1000 + $i);
    }
}
--- request eval
[ "GET /v1/dep/devices/acme", "GET /v1/dep/devices/acme?limit=2", "GET /v1/dep/devices/acme?limit=2&cursor=4",
  "GET /v1/dep/devices/acme?profile_status=assigned", "GET /v1/dep/devices/acme?op_type=modified&limit=3",
  "GET /v1/dep/devices/acme?serial=C02C", "GET /v1/dep/devices/acme?serial=NOPE",
  "GET /v1/dep/devices/acme?assign_result=FAILED", "GET /v1/dep/devices/acme?assign_result=SUCCESS&limit=1",
  "GET /v1/dep/devices/acme/C02D", "GET /v1/dep/devices/acme/NOPE", "GET /v1/dep/devices/acme/bad!serial",
  "GET /v1/dep/devices/none", "GET /v1/dep/devices/acme?op_type=a%20b", "DELETE /v1/dep/devices/acme" ]
--- error_code eval
[ 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404, 400, 404, 400, 405 ]
--- json eval
[ exact({ dep_name => "acme", total => num(5), cursor => "", devices => [ map { { serial_number => $_ } } qw(C02A C02B C02C C02D C02E) ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "2", devices => [ { serial_number => "C02A" }, { serial_number => "C02B" } ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "", devices => [ { serial_number => "C02E" } ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "", devices => [ { serial_number => "C02B" }, { serial_number => "C02E" } ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "3", devices => [ { serial_number => "C02B" } ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "", devices => [ { serial_number => "C02C", profile_status => "pushed" } ] }),
  exact({ dep_name => "acme", total => num(5), cursor => "", devices => [] }),
  exact({ dep_name => "acme", total => num(5), cursor => "", devices => [] }),
  exact({ dep_name => "acme", total => num(5), cursor => "1", devices => [ { serial_number => "C02A", assign_result => "SUCCESS" } ] }),
  exact({ serial_number => "C02D", model => "MacBook Air", os => "OSX", device_family => "Mac", profile_status => "removed",
          op_type => "modified", op_date => "2026-11-30T10:00:00Z", assign_result => "SUCCESS",
          assign_at => num(1700000000004), updated_at => num(1004) }),
  exact({ error => "DEP name acme has no device NOPE" }),
  exact({ error => qr/^a serial number is 1 to 64/ }),
  exact({ error => "unknown DEP name none" }),
  exact({ error => qr/^serial, profile_status, op_type and assign_result are words/ }),
  exact({ error => "DEP devices take GET" }) ]



=== TEST 21: paths and names that are not: 404 or 400 with one info line each, no error line
--- request eval
[ "GET /v1/dep", "GET /v1/dep/", "GET /v1/dep/nothing/acme", "GET /v1/dep/tokens",
  "GET /v1/dep/tokens/bad%21name", "GET /v1/dep/tokens/" . ("n" x 65), "GET /v1/dep/tokens/acme/more",
  "GET /v1/dep/status/a%20b", "PATCH /v1/dep/config/acme\n{}" ]
--- error_code eval
[ 404, 404, 404, 400, 400, 400, 404, 400, 405 ]
--- json eval
[ (exact({ error => qr/^unknown (DEP )?endpoint/ })) x 3,
  (exact({ error => "a DEP name is 1 to 64 letters, digits, \".\", \"_\" or \"-\"" })) x 3,
  exact({ error => "unknown DEP endpoint: nothing follows the DEP name here" }),
  exact({ error => qr/^a DEP name is/ }),
  exact({ error => "DEP config takes GET or PUT" }) ]
--- log_level: info
--- grep_error_log eval
qr/\[(?:info|warn|error)\] [^\n]*(?:mdm|DEP)[^\n]*/
--- grep_error_log_out eval
qr/\A\[info\] [^\n]*answered 40[045]: [^\n]*\n\z/



=== TEST 22: wrong credentials on a DEP path: 401 with the challenge
--- no_defaults
--- request
GET /v1/dep/dep_names
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="ngx_mdm"



=== TEST 23: Redis down: 503 JSON on every DEP endpoint, with a log line
--- redis_setup eval
sub { redis_stop() }
--- request eval
[ "GET /v1/dep/tokenpki/acme", "PUT /v1/dep/tokenpki/acme\nxx", "GET /v1/dep/tokens/acme", "PUT /v1/dep/tokens/acme\n$::TOK",
  "GET /v1/dep/dep_names", "POST /v1/dep/sync/acme\n", "GET /v1/dep/status/acme", "GET /v1/dep/devices/acme",
  "GET /v1/dep/proxy/acme/account" ]
--- error_code eval
[ (503) x 9 ]
--- json eval
[ (exact({ error => qr/^redis (is not connected|Connection refused)/ })) x 9 ]
--- error_log
mdm: API request answered 503: redis



=== TEST 24: mdm_dep_thread_pool off: the key is made and the token file decrypted on the event loop, same answers
--- config
location /v1/ { mdm_api; mdm_api_key dep-key; mdm_dep_thread_pool off; }
--- redis_setup eval
[ [ "FLUSHALL" ] ]
--- request
GET /v1/dep/tokenpki/inline
--- error_code: 200
--- after_each eval
sub {
    my ($block, $body) = @_;
    my $cf = t::MDM::pki_dir() . "/dep-inline.pem";
    main::spew($cf, $body);
    my $r = api('PUT', '/v1/dep/tokenpki/inline', dep_p7m(dep_plain($::TOK, begin => 1), $cf, 'smime'));
    Test::More::is($r->{status}, 200, "the token file is taken") or Test::More::diag($r->{body});
    Test::More::is($r->{json}{consumer_key}, $::TOK{consumer_key}, "its consumer key");
}
--- log_level: debug
--- no_error_log eval
[ qr/added to thread pool/, "[error]" ]



=== TEST 25: keys made in the thread pool do not stall the event loop: while 8 are made, another request is answered at once
--- redis_setup eval
[ [ "FLUSHALL" ], [ "SADD", "mdm:dep:names", "acme" ] ]
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my @socks;
    my $t0 = Time::HiRes::time();
    for my $i (1 .. 8) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => main::server_port()) or die;
        print {$s} "GET /v1/dep/tokenpki/stall$i HTTP/1.1\r\nHost: x\r\nConnection: close\r\n$::AUTH\r\n\r\n";
        push @socks, $s;
    }
    Time::HiRes::sleep(0.05);
    my $t1 = Time::HiRes::time();
    my $r = api('GET', '/v1/dep/status/acme');
    my $took = Time::HiRes::time() - $t1;
    my $n = 0;
    for my $s (@socks) {
        local $/;
        my $resp = <$s>;
        $n++ if $resp =~ /\AHTTP\/1\.1 200 .*BEGIN CERTIFICATE/s;
    }
    my $all = Time::HiRes::time() - $t0;
    Test::More::is($r->{status}, 200, "status answered");
    Test::More::is($n, 8, "8 keys made");
    Test::More::diag(sprintf("8 keys in %.3f s; a status request meanwhile took %.3f s", $all, $took));
    Test::More::cmp_ok($took, '<', $all / 2, "the status request did not wait for the keys");
}
