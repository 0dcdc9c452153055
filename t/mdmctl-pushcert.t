# mdmctl pushcert: from nothing to a push certificate (protocol-ext.md C5).
# request (the key kept 0600, a CSR), vendor-sign with a vendor PKI made
# here (the plist has the three keys, the signature verifies with
# `openssl dgst -verify`), the mdmcert.download flow against
# t/servers/mdmcert.pl (strict about the request) and decrypt, then upload
# of the certificate "Apple" issues for the CSR, paired with the kept key.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;
use t::MDMServers;
use t::MDMCtl;

use MIME::Base64 qw(decode_base64);
use Test::More;

no_shuffle();
api_defaults('ctl-pushcert-key');

our $V = vendor_pki();
our $D = "$::CtlHome/pc";      # the pushcert directory of most blocks
our $M;                                 # the mdmcert.download stand-in

sub slurp { t::MDM::_slurp($_[0]) }
sub ossl { t::MDM::run_cmd('openssl', @_) }

# the checks of a request file for the portal, whoever made it
sub check_portal_request {
    my ($file, $csr, $md, $name) = @_;
    my $p = eval { portal_request($file) };
    ok($p, "$name: base64 of an XML plist") or return diag($@);
    is_deeply([ sort keys %$p ],
              [ qw(PushCertCertificateChain PushCertRequestCSR PushCertSignature) ],
              "$name: the plist has the three keys");
    my (undef, $der) = ossl('req', '-in', $csr, '-outform', 'DER');
    is(decode_base64($p->{PushCertRequestCSR}), $der,
       "$name: PushCertRequestCSR is the CSR's DER");
    t::MDM::_spew("$D.sig", decode_base64($p->{PushCertSignature}));
    t::MDM::_spew("$D.der", decode_base64($p->{PushCertRequestCSR}));
    my ($st, $out, $err) = ossl('dgst', "-$md", '-verify', $V->{vendor_pub},
                                '-signature', "$D.sig", "$D.der");
    is($st, 0, "$name: openssl dgst -$md -verify with the vendor's key")
        or diag("$out$err");
    # the same signature does not verify over other bytes
    t::MDM::_spew("$D.der2", "x" . decode_base64($p->{PushCertRequestCSR}));
    ($st) = ossl('dgst', "-$md", '-verify', $V->{vendor_pub},
                 '-signature', "$D.sig", "$D.der2");
    isnt($st, 0, "$name: ... and not over other bytes");
    is($p->{PushCertCertificateChain} =~ s/\r//gr, slurp($V->{chain}),
       "$name: the chain is vendor, intermediate, root (PEM)");
    return $p;
}

# what "Apple" makes from a CSR: a push certificate for this topic
sub apple_issue {
    my ($csr, $topic, $out) = @_;
    my $ca = t::MDMServers::_ca('apple');
    t::MDM::_run('openssl', 'x509', '-req', '-in', $csr, '-CA', $ca->{cert},
                 '-CAkey', $ca->{key}, '-set_serial', int(rand(1e9)) + 10,
                 '-days', '365', '-subj', "/UID=$topic/CN=APSP:x/C=US",
                 '-out', $out);
    return $out;
}

sub pubkey_of { (ossl('pkey', '-in', $_[0], '-pubout'))[1] }

sub t1 {
    my ($rc, $out, $err) = ctl('pushcert', 'request', '--email', 'admin@example.org',
                               '--org', 'Example Org', '--country', 'DE', '--dir', $::D);
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr/push key: \Q$::D\E\/push.key/, 'says where the key is');
    is((stat "$::D/push.key")[2] & 07777, 0600, 'the key is mode 0600');
    my ($st, $subj, $e) = ::ossl('req', '-in', "$::D/push.csr", '-noout', '-subject',
                                 '-verify', '-nameopt', 'RFC2253');
    is($st, 0, 'the CSR verifies') or diag($e);
    like($subj, qr/^subject=emailAddress=admin\@example.org,C=DE,O=Example Org,CN=mdm-push$/m,
         'subject: email, country, organization, CN');
    my ($mod) = ::ossl('req', '-in', "$::D/push.csr", '-noout', '-pubkey');
    is((::ossl('req', '-in', "$::D/push.csr", '-noout', '-pubkey'))[1],
       ::pubkey_of("$::D/push.key"), 'the CSR is for the key');

    my $key = ::slurp("$::D/push.key");
    ($rc, $out, $err) = ctl('pushcert', 'request', '--email', 'admin@example.org', '--dir', $::D);
    is($rc, 0, 'again: exit 0');
    like($err, qr/using the existing push key/, 'again: says it reuses the key');
    is(::slurp("$::D/push.key"), $key, 'again: the same key (a renewal keeps it)');
    is((::ossl('req', '-in', "$::D/push.csr", '-noout', '-pubkey'))[1],
       ::pubkey_of("$::D/push.key"), 'again: the new CSR is for it');

    ($rc, $out, $err) = ctl('pushcert', 'request', '--email', 'admin@example.org',
                            '--dir', "$::D-force");
    ($rc, $out, $err) = ctl('pushcert', 'request', '--email', 'admin@example.org',
                            '--dir', "$::D-force", '--force');
    is($rc, 0, '--force: exit 0');
    ok(-f "$::D-force/push.key.old", '--force: the old key is kept aside');
    isnt(::slurp("$::D-force/push.key"), ::slurp("$::D-force/push.key.old"),
         '--force: a new key');
}

sub t2 {
    for my $args ([], [ '--email', 'not-an-address' ], [ '--email', 'a@b.c', '--country', 'Germany' ],
                  [ '--email', 'a@b.c', '--org', '' ], [ '--email', 'a@b.c', 'extra' ],
                  [ '--email', 'a@b.c', '--bogus' ], [ '--email' ]) {
        my ($rc, $out, $err) = ctl('pushcert', 'request', '--dir', "$::D-bad", @$args);
        is($rc, 2, "request @$args: exit 2");
        like($err, qr/^mdmctl: /, "request @$args: says why");
    }
    ok(!-e "$::D-bad/push.key", 'no key written');
}

sub t3 {
    my ($rc, $out, $err) = ctl('pushcert', 'vendor-sign', '--dir', $::D,
        '--vendor-cert', $V->{vendor}, '--vendor-key', $V->{vendor_key},
        '--apple-intermediate', $V->{int_der}, '--apple-root', $V->{root});
    is($rc, 0, 'exit 0') or diag($err);
    is($err, '', 'no warning with the whole chain');
    like($out, qr/request for the portal: \Q$::D\E\/push.req/, 'says where the request is');
    ::check_portal_request("$::D/push.req", "$::D/push.csr", 'sha256', 'sha256');

    ($rc, $out, $err) = ctl('pushcert', 'vendor-sign', '--csr', "$::D/push.csr",
        '--vendor-cert', $V->{vendor}, '--vendor-key', $V->{vendor_key},
        '--apple-intermediate', $V->{int}, '--apple-root', $V->{root},
        '--sha1', '--out', "$::D/push-sha1.req");
    is($rc, 0, '--sha1: exit 0') or diag($err);
    ::check_portal_request("$::D/push-sha1.req", "$::D/push.csr", 'sha1', 'sha1');
}

sub t4 {
    my @base = ('--vendor-cert', $V->{vendor}, '--vendor-key', $V->{vendor_key});
    my %cases = (
        'the key is not the certificate\'s' =>
            [ '--csr', "$::D/push.csr", '--vendor-cert', $V->{vendor}, '--vendor-key', "$V->{dir}/int.key" ],
        'no vendor key' => [ '--csr', "$::D/push.csr", '--vendor-cert', $V->{vendor} ],
        'the CSR is a certificate' => [ '--csr', $V->{root}, @base ],
        'no such CSR' => [ '--csr', "$::D/nothing.csr", @base ],
        'the root is not a certificate' =>
            [ '--csr', "$::D/push.csr", @base, '--apple-root', "$::D/push.key" ],
    );
    for my $name (sort keys %cases) {
        unlink "$::D/bad.req";
        my ($rc, $out, $err) = ctl('pushcert', 'vendor-sign', @{ $cases{$name} },
                                   '--out', "$::D/bad.req");
        is($rc, 2, "$name: exit 2");
        like($err, qr/^mdmctl: /m, "$name: says why");
        ok(!-e "$::D/bad.req", "$name: no request written");
    }
    my ($rc, $out, $err) = ctl('pushcert', 'vendor-sign', '--csr', "$::D/push.csr", @base,
                               '--out', "$::D/short.req");
    is($rc, 0, 'without Apple\'s certificates: exit 0');
    like($err, qr/warning: .*the portal wants all three/, '... with a warning');
}

sub t5 {
    $::M = start_mdmcert($V, 'the-service-key');
    my ($rc, $out, $err) = ctl('pushcert', 'mdmcert-download', '--email', 'admin@example.org',
        '--dir', $::D, '--url', $::M->{url}, '--api-key', 'the-service-key');
    is($rc, 0, 'exit 0') or diag($err);
    like($out, qr/pushcert decrypt/, 'says what comes next');
    my @req = t::MDMServers::_requests($::M);
    is(scalar @req, 1, 'one request');
    is($req[0]{status}, 200, 'the service took it') or diag($req[0]{reason});
    is($req[0]{headers}{'content-type'}, 'application/json', 'Content-Type');
    my $body = JSON::PP->new->decode($req[0]{body});
    is(decode_base64($body->{csr}), ::slurp("$::D/push.csr"), 'csr: base64 of the PEM CSR of "request"');
    is(decode_base64($body->{encrypt}), ::slurp("$::D/mdmcert.pem"), 'encrypt: base64 of the exchange certificate');
    is($body->{key}, 'the-service-key', 'key');
    is((stat "$::D/mdmcert.key")[2] & 07777, 0600, 'the exchange key is mode 0600');
    my (undef, $subj) = ::ossl('x509', '-in', "$::D/mdmcert.pem", '-noout', '-subject');
    like($subj, qr/CN = mdmcert.download/, 'the exchange certificate: CN mdmcert.download');

    my $mail = "$::M->{outbox}/1.hex";
    ok(-f $mail, 'the service "emailed" the encrypted request');
    ($rc, $out, $err) = ctl('pushcert', 'decrypt', $mail, '--dir', $::D);
    is($rc, 0, 'decrypt: exit 0') or diag($err);
    ::check_portal_request("$::D/push.req", "$::D/push.csr", 'sha256', 'decrypted');

    # the stand-in is strict: what differs from the shape of C5 is refused
    my $good = $req[0]{body};
    my %bad = (
        'GET' => [ 'GET', 'application/json', $good, 405 ],
        'text/plain' => [ 'POST', 'text/plain', $good, 400 ],
        'a key missing' => [ 'POST', 'application/json', JSON::PP->new->encode({ %$body, encrypt => undef }) =~ s/,?"encrypt":null//r, 400 ],
        'a key more' => [ 'POST', 'application/json', JSON::PP->new->encode({ %$body, org => 'x' }), 400 ],
        'a DER CSR' => [ 'POST', 'application/json', JSON::PP->new->encode({ %$body,
            csr => MIME::Base64::encode_base64((::ossl('req', '-in', "$::D/push.csr", '-outform', 'DER'))[1], '') }), 400 ],
        'the PEM not in base64' => [ 'POST', 'application/json', JSON::PP->new->encode({ %$body,
            encrypt => ::slurp("$::D/mdmcert.pem") }), 400 ],
    );
    for my $name (sort keys %bad) {
        my ($m, $ct, $b, $want) = @{ $bad{$name} };
        my ($st, $o) = t::MDM::run_cmd('curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', $m,
                                       '-H', "Content-Type: $ct", '--data-binary', $b, $::M->{url});
        is($o, $want, "the stand-in refuses $name");
    }
    is(scalar(() = glob("$::M->{outbox}/*")), 1, 'the stand-in "emailed" nothing for them');

    # base64 instead of hex is taken too
    my $der = pack('H*', ::slurp($mail) =~ s/\s//gr);
    t::MDM::_spew("$::D/mail.b64", MIME::Base64::encode_base64($der));
    ($rc, $out, $err) = ctl('pushcert', 'decrypt', "$::D/mail.b64", '--dir', $::D,
                            '--out', "$::D/push-b64.req");
    is($rc, 0, 'decrypt base64: exit 0') or diag($err);
    is(::slurp("$::D/push-b64.req"), ::slurp("$::D/push.req"), 'decrypt base64: the same request');
}

sub t6 {
    my @args = ('pushcert', 'mdmcert-download', '--email', 'admin@example.org', '--dir', $::D);
    my ($rc, $out, $err) = ctl(@args, '--url', $::M->{url});
    is($rc, 2, 'no API key: exit 2');
    like($err, qr/no mdmcert.download API key/, 'no API key: says so');

    ($rc, $out, $err) = ctl(@args, '--url', $::M->{url}, '--api-key', 'wrong');
    is($rc, 4, 'wrong API key: exit 4 (the service refused it)');
    like($err, qr/HTTP 403: unknown API key/, 'wrong API key: the service\'s reason');

    # the key from the environment and the config file, the URL too
    t::MDM::_spew("$::CtlHome/mdmcert.conf",
                  "mdmcert_url = $::M->{url}\nmdmcert_api_key = the-service-key\n");
    ($rc, $out, $err) = ctl('--config', "$::CtlHome/mdmcert.conf", @args);
    is($rc, 0, 'URL and key from the config file: exit 0') or diag($err);
    ($rc, $out, $err) = ctl_raw({ MDMCERT_URL => $::M->{url}, MDMCERT_API_KEY => 'the-service-key' },
                                @args);
    is($rc, 0, 'URL and key from the environment: exit 0') or diag($err);
    ok(-f "$::D/mdmcert.key.old", 'the previous exchange key is kept aside');

    # an email made for the previous exchange key does not open with the new one
    ($rc, $out, $err) = ctl('pushcert', 'decrypt', "$::M->{outbox}/1.hex", '--dir', $::D,
                            '--out', "$::D/old.req");
    is($rc, 2, 'decrypt an old email: exit 2');
    like($err, qr/cannot decrypt it with the exchange key/, 'decrypt an old email: says why');
    ok(!-e "$::D/old.req", 'decrypt an old email: nothing written');

    ($rc, $out, $err) = ctl('pushcert', 'decrypt', $V->{root}, '--dir', $::D);
    is($rc, 2, 'decrypt a file that is not CMS: exit 2');

    t::MDM::_spew($::M->{rules}, '{"status": 503}');
    ($rc, $out, $err) = ctl(@args, '--url', $::M->{url}, '--api-key', 'the-service-key');
    is($rc, 3, 'the service answers 503: exit 3');
    unlink $::M->{rules};

    t::MDMServers::stop_server($::M);
    ($rc, $out, $err) = ctl(@args, '--url', $::M->{url}, '--api-key', 'the-service-key');
    is($rc, 3, 'the service is down: exit 3');
    like($err, qr/Could(n't| not) connect/i, 'the service is down: says so');
}

sub t7 {
    my $topic = 'com.apple.mgmt.External.6e1c1c53-0000-4000-8000-00000000c7c1';
    my $cert = ::apple_issue("$::D/push.csr", $topic, "$::D/from-apple.pem");

    my ($rc, $out, $err) = ctl('pushcert', 'upload', $cert, '--dir', $::D);
    is($rc, 0, 'upload: exit 0') or diag($err);
    like($out, qr/^stored: topic \Q$topic\E, expires \d{4}-/, 'upload: says what was stored');
    my $stored = redis('HGET', "mdm:pushcert:$topic", 'key');
    t::MDM::_spew("$::D/stored.key", $stored // '');
    is(::pubkey_of("$::D/stored.key"), ::pubkey_of("$::D/push.key"), 'the server has the kept key');
    is(redis('HGET', "mdm:pushcert:$topic", 'cert'), ::slurp($cert) =~ s/^(?!-----BEGIN).*?(?=-----BEGIN)//sr,
       'the server has the certificate');

    ($rc, $out, $err) = ctl('pushcert', 'show', '--dir', $::D);
    is($rc, 0, 'show (the topic of the uploaded certificate): exit 0') or diag($err);
    like($out, qr/^topic \Q$topic\E, expires /, 'show: topic and expiry');
    ($rc, $out, $err) = ctl('--json', 'pushcert', 'show', $topic);
    is($rc, 0, 'show --json TOPIC: exit 0');
    is(ctl_json($out)->{topic}, $topic, 'show --json: the API\'s JSON');
    ($rc, $out, $err) = ctl('pushcert', 'show', 'com.apple.mgmt.External.nothing');
    is($rc, 4, 'show an unknown topic: exit 4');
    like($err, qr/404: no push certificate for this topic/, 'show an unknown topic: the server\'s error');

    # a certificate for another key: refused before anything is sent
    my $other = make_push_cert();
    ($rc, $out, $err) = ctl('pushcert', 'upload', $other->{cert}, '--dir', $::D);
    is($rc, 2, 'a certificate of another key: exit 2');
    like($err, qr/is not the certificate of the key/, '... says so');
    ($rc, $out, $err) = ctl('pushcert', 'upload', $other->{cert}, '--key', $other->{key},
                            '--dir', "$::D-other");
    is($rc, 4, 'another topic (with its own --key): exit 4, the server\'s guard');
    like($err, qr/409: the certificate is for topic/, '... the server\'s reason');
    ($rc, $out, $err) = ctl('pushcert', 'upload', $other->{cert}, '--key', $other->{key},
                            '--dir', "$::D-other", '--force');
    is($rc, 0, '--force: exit 0') or diag($err);
    is(redis('SCARD', 'mdm:topics'), 2, 'both topics known');
}

run_tests();

__DATA__

=== TEST 1: pushcert request makes the key (0600) and a CSR for it; again reuses the key; --force makes a new one
--- request
GET /v1/enrollments
--- after_each eval
\&::t1



=== TEST 2: pushcert request: bad command lines exit 2 and write nothing
--- request
GET /v1/enrollments
--- after_each eval
\&::t2



=== TEST 3: vendor-sign: the three keys, the signature verifies (SHA-256; --sha1 too), the chain in order
--- request
GET /v1/enrollments
--- after_each eval
\&::t3



=== TEST 4: vendor-sign refuses what cannot make a good request (exit 2, no file)
--- request
GET /v1/enrollments
--- after_each eval
\&::t4



=== TEST 5: mdmcert-download: the request the service takes; decrypt gives the file for the portal
--- request
GET /v1/enrollments
--- after_each eval
\&::t5



=== TEST 6: mdmcert-download: errors (no key, wrong key, service down or failing) and decrypt with the wrong exchange key
--- request
GET /v1/enrollments
--- after_each eval
\&::t6



=== TEST 7: upload pairs Apple's certificate with the kept key; show; a new topic needs --force
--- redis_setup
FLUSHALL
--- request
GET /v1/enrollments
--- after_each eval
\&::t7
--- no_error_log
[alert]
