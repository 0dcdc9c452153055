# Self-test of t/MDM.pm (plain Test::More; no nginx needed).
#     prove t/support.t
use strict;
use warnings;

use Test::More;

# prove (TAP::Harness 3.44) does not put "." in @INC and Debian's perl leaves
# it out too, so find t/MDM.pm from this file's location.
use FindBin ();
use lib "$FindBin::Bin/..";
use t::MDM;

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use Test2::API qw(intercept);
use Time::HiRes qw(time sleep);

my $T0 = time;
my $PKI = $ENV{TEST_NGINX_PKI};
my $Scratch = tempdir('mdm-support-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $N = 0;

sub spew {
    my ($data) = @_;
    my $f = "$Scratch/f" . ++$N;
    open my $fh, '>:raw', $f or die "$f: $!";
    print {$fh} $data;
    close $fh;
    return $f;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    return scalar <$fh>;
}

# -> (exit status, stdout . stderr)
sub run {
    my ($st, $out, $err) = t::MDM::run_cmd(@_);
    return ($st, $out . $err);
}

sub verify_cert {
    my ($cert, @args) = @_;
    return run('openssl', 'verify', @args, $cert);
}

# openssl cms -verify of a Mdm-Signature value over $body.
sub cms_verify {
    my ($sig_b64, $body, $cafile, @extra) = @_;
    my $sig = spew(decode_base64($sig_b64));
    return run('openssl', 'cms', '-verify', '-binary', '-inform', 'DER',
               '-in', $sig, '-content', spew($body), '-CAfile', $cafile,
               '-purpose', 'any', '-out', '/dev/null', @extra);
}

sub cms_print {
    my ($sig_b64) = @_;
    my (undef, $out) = run('openssl', 'cms', '-cmsout', '-print',
                           '-inform', 'DER', '-in', spew(decode_base64($sig_b64)));
    return $out;
}

sub port_refuses {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return !$s;
}

# ---------------------------------------------------------------------------
subtest 'redis: RESP types' => sub {
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    like($port, qr/^\d+$/, 'TEST_NGINX_REDIS_PORT is set');
    is(redis_port(), $port, 'redis_port() matches');

    is(redis('PING'), 'PONG', 'status reply');

    my $bin = join('', map { chr } 0 .. 255) . "\r\n*3\r\n\$-1\r\n";
    is(redis('SET', 'bin', $bin), 'OK', 'SET binary value');
    is(redis('GET', 'bin'), $bin, 'GET returns the exact bytes');
    is(redis('SET', "k\r\ney\0", 'x'), 'OK', 'binary key');
    is(redis('GET', "k\r\ney\0"), 'x', 'binary key read back');

    is(redis('SET', 'wide', "\x{263A}"), 'OK', 'wide character value');
    is(redis('GET', 'wide'), "\xe2\x98\xba", 'sent as UTF-8');

    is(redis('INCR', 'n'), 1, 'integer reply');
    is(redis('INCRBY', 'n', 41), 42, 'integer reply again');
    is(redis('GET', 'missing'), undef, 'nil bulk reply');

    is(redis('RPUSH', 'l', 'a', 'b', ''), 3, 'RPUSH');
    is_deeply(redis('LRANGE', 'l', 0, -1), [ 'a', 'b', '' ], 'array reply');
    is_deeply(redis('LRANGE', 'none', 0, -1), [], 'empty array reply');
    is_deeply(redis('MGET', 'n', 'missing'), [ '42', undef ],
              'nil element in an array');

    is(redis('MULTI'), 'OK', 'MULTI');
    is(redis('SET', 'x', 1), 'QUEUED', 'queued');
    is(redis('LPUSH', 'x', 2), 'QUEUED', 'queued');
    my $ex = redis('EXEC');
    is($ex->[0], 'OK', 'EXEC: first result');
    isa_ok($ex->[1], 't::MDM::RedisError', 'EXEC: error element');
    like("$ex->[1]", qr/^WRONGTYPE/, 'error element stringifies');

    my $scan = redis('SCAN', 0, 'COUNT', 1000);
    is(ref $scan->[1], 'ARRAY', 'nested array (SCAN)');

    eval { redis('NOSUCHCMD', 'a') };
    like($@, qr/^ERR unknown command/, 'redis() dies with the error text');
    my $r = redis_try('NOSUCHCMD');
    isa_ok($r, 't::MDM::RedisError', 'redis_try error');
    like("$r", qr/^ERR unknown command/, 'redis_try error text');
    is(redis_try('PING'), 'PONG', 'redis_try success');

    # Kill our connection from another client: the next command must
    # reconnect transparently.
    my $killer = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                       PeerPort => $port) or die $!;
    print {$killer} "*6\r\n\$6\r\nCLIENT\r\n\$4\r\nKILL\r\n\$4\r\nTYPE\r\n"
                  . "\$6\r\nnormal\r\n\$6\r\nSKIPME\r\n\$3\r\nyes\r\n";
    my $killed = <$killer>;
    is($killed, ":1\r\n", 'killed our connection from another client');
    is(redis('PING'), 'PONG', 'reconnected after the server closed us');

    # A forked child that exits normally must not take Redis with it.
    my $pid = fork // die;
    if (!$pid) {
        redis('SET', 'child', $$);    # uses its own connection
        exit 0;
    }
    waitpid($pid, 0);
    is(redis('GET', 'child'), $pid, 'a forked child can use redis()');
    is(redis('PING'), 'PONG', 'Redis survives a child exiting');
};

subtest 'redis: stop, start, flush' => sub {
    my $port = redis_port();
    redis('SET', 'persist', 1);

    my $t = time;
    redis_stop();
    ok(port_refuses($port), 'port refuses connections after redis_stop');
    my $r = redis_try('PING');
    isa_ok($r, 't::MDM::RedisError', 'redis_try while stopped');
    like("$r", qr/^IO: .*refused/i, 'error says the connection was refused');
    ok(!eval { redis('PING'); 1 }, 'redis() dies while stopped');
    redis_stop();    # no-op

    redis_start();
    is(redis_port(), $port, 'same port after redis_start');
    is(redis('PING'), 'PONG', 'answers again');
    is(redis('GET', 'persist'), undef, 'no persistence across restarts');
    redis_start();    # no-op while running
    cmp_ok(time - $t, '<', 3, 'stop/start is quick');

    redis('SET', 'a', 1);
    redis_flush();
    is(redis('DBSIZE'), 0, 'redis_flush empties the database');
};

# ---------------------------------------------------------------------------
subtest 'PKI files' => sub {
    ok(-d $PKI, 'TEST_NGINX_PKI is a directory');
    is(pki_dir(), $PKI, 'pki_dir()');
    for (qw(ca.pem int.pem identity-ca.pem server.pem server.key
            rogue-ca.pem)) {
        ok(-s "$PKI/$_" && -r _, "$_ exists");
    }
    is(sprintf('%o', (stat "$PKI/server.key")[2] & 0777), '644',
       'keys are world-readable (nginx reads them)');

    my ($st, $out) = verify_cert("$PKI/int.pem", '-CAfile', "$PKI/ca.pem");
    is($st, 0, 'intermediate verifies against the root') or diag $out;

    ($st, $out) = verify_cert("$PKI/server.pem", '-CAfile', "$PKI/ca.pem",
                              '-purpose', 'sslserver');
    is($st, 0, 'server cert verifies for TLS server use') or diag $out;
    (undef, $out) = run('openssl', 'x509', '-in', "$PKI/server.pem", '-noout',
                        '-subject', '-ext', 'subjectAltName');
    like($out, qr/CN\s*=\s*localhost/, 'server CN=localhost');
    like($out, qr/IP Address:127\.0\.0\.1/, 'server SAN IP:127.0.0.1');

    my $bundle = slurp("$PKI/identity-ca.pem");
    my @certs = $bundle =~ /-----BEGIN CERTIFICATE-----/g;
    is(scalar @certs, 2, 'identity-ca.pem holds two certificates');
    is($bundle, slurp("$PKI/ca.pem") . slurp("$PKI/int.pem"),
       'identity-ca.pem = root + intermediate');

    ($st) = verify_cert("$PKI/rogue-ca.pem", '-CAfile', "$PKI/rogue-ca.pem");
    is($st, 0, 'rogue CA is self-signed');
    ($st) = verify_cert("$PKI/rogue-ca.pem", '-CAfile', "$PKI/identity-ca.pem");
    isnt($st, 0, 'rogue CA is not trusted by identity-ca.pem');
};

subtest 'device certificates' => sub {
    my $d = device_cert('dev1');
    is($d->{name}, 'dev1', 'name');
    ok(-r $d->{$_}, "$_ file readable") for qw(cert key chain);
    is($d->{pem}, slurp($d->{cert}), 'pem is the certificate file');
    is(sha256_hex($d->{der}), $d->{sha256}, 'sha256 is the hash of der');
    my (undef, $der) = t::MDM::run_cmd('openssl', 'x509', '-in', $d->{cert},
                                       '-outform', 'DER');
    is($der, $d->{der}, 'der matches openssl');
    like($d->{sha256}, qr/^[0-9a-f]{64}$/, 'sha256 is lowercase hex');
    is(cert_sha256('dev1'), $d->{sha256}, 'cert_sha256()');
    is(slurp($d->{chain}), $d->{pem} . slurp("$PKI/int.pem"),
       'chain = cert + intermediate');

    my (undef, $txt) = run('openssl', 'x509', '-in', $d->{cert}, '-noout',
                           '-subject', '-issuer', '-ext',
                           'extendedKeyUsage,keyUsage');
    like($txt, qr/subject=CN\s*=\s*dev1/, 'CN=dev1');
    like($txt, qr/issuer=.*Device CA/, 'issued by the intermediate');
    like($txt, qr/TLS Web Client Authentication/, 'EKU clientAuth');
    like($txt, qr/Digital Signature/, 'KeyUsage digitalSignature');
    (undef, $txt) = run('openssl', 'x509', '-in', $d->{cert}, '-noout',
                        '-text');
    like($txt, qr/Public-Key: \(2048 bit\)/, 'RSA-2048');

    my (undef, $pub1) = run('openssl', 'x509', '-in', $d->{cert}, '-noout',
                            '-pubkey');
    my (undef, $pub2) = run('openssl', 'pkey', '-in', $d->{key}, '-pubout');
    is($pub1, $pub2, 'key matches the certificate');

    my ($st, $out) = verify_cert($d->{cert}, '-CAfile', "$PKI/ca.pem",
                                 '-untrusted', "$PKI/int.pem");
    is($st, 0, 'verifies: -CAfile ca.pem -untrusted int.pem') or diag $out;
    ($st, $out) = verify_cert($d->{cert}, '-CAfile', "$PKI/identity-ca.pem",
                              '-purpose', 'sslclient');
    is($st, 0, 'verifies against identity-ca.pem for sslclient') or diag $out;

    is(device_cert('dev1'), $d, 'cached by name');
    ok(!eval { device_cert('dev1', expired => 1); 1 },
       'same name with other options dies');
    like($@, qr/other options/, '... with a clear message');
    ok(!eval { device_cert('x', bogus => 1); 1 }, 'unknown option dies');

    my @v = ('-CAfile', "$PKI/ca.pem", '-untrusted', "$PKI/int.pem");

    my $e = device_cert('old', expired => 1);
    ($st, $out) = verify_cert($e->{cert}, @v);
    isnt($st, 0, 'expired cert fails verification');
    like($out, qr/certificate has expired/, '... because it expired');
    ($st) = run('openssl', 'x509', '-in', $e->{cert}, '-noout',
                '-checkend', 0);
    isnt($st, 0, 'notAfter is in the past');

    my $f = device_cert('future', not_before_in => 3600);
    ($st, $out) = verify_cert($f->{cert}, @v);
    isnt($st, 0, 'not-yet-valid cert fails verification');
    like($out, qr/not yet valid/, '... because of notBefore');

    my $soon = device_cert('soon', not_before_in => -60, not_after_in => 3);
    ($st, $out) = verify_cert($soon->{cert}, @v);
    is($st, 0, 'not_after_in: valid now') or diag $out;

    my $rogue = device_cert('rogue1', issuer => 'rogue');
    ($st, $out) = verify_cert($rogue->{cert}, @v);
    isnt($st, 0, 'rogue cert fails against our CA');
    like($out, qr/unable to get local issuer certificate/, '... no issuer');
    ($st) = verify_cert($rogue->{cert}, '-CAfile', "$PKI/rogue-ca.pem");
    is($st, 0, 'rogue cert verifies against the rogue CA');

    my $nca = device_cert('srv-only', no_client_auth => 1);
    ($st) = verify_cert($nca->{cert}, @v);
    is($st, 0, 'no_client_auth cert chains fine');
    ($st, $out) = verify_cert($nca->{cert}, @v, '-purpose', 'sslclient');
    isnt($st, 0, '... but not for client auth');
    like($out, qr/unsuitable certificate purpose/, '... wrong purpose');

    my $t = time;
    my @shared = map { device_cert("bulk-$_", shared_key => 1) } 1 .. 10;
    my $per = (time - $t) / 10;
    cmp_ok($per, '<', 0.2, sprintf('shared_key certs are cheap (%.0f ms)',
                                   $per * 1000));
    is(scalar(keys %{{ map { $_->{key} => 1 } @shared }}), 1, 'one key');
    is(scalar(keys %{{ map { $_->{sha256} => 1 } @shared }}), 10,
       'distinct hashes');
    is(scalar(keys %{{ map { $_->{serial} => 1 } @shared }}), 10,
       'distinct serials');
    ($st) = verify_cert($shared[0]{cert}, @v, '-purpose', 'sslclient');
    is($st, 0, 'shared-key cert verifies');

    my $dk = device_cert('dated-shared', expired => 1, shared_key => 1);
    is($dk->{key}, $shared[0]{key}, 'dated certs can share the key too');
};

# ---------------------------------------------------------------------------
subtest 'Mdm-Signature' => sub {
    my $body = vector('nanomdm/mdm/testdata/Authenticate.2.plist');
    my $ica = "$PKI/identity-ca.pem";

    my $sig = mdm_signature($body, 'dev1');
    like($sig, qr{^[A-Za-z0-9+/]+={0,2}$}, 'single-line base64');
    my $der = decode_base64($sig);
    is(substr($der, 0, 2), "\x30\x82", 'DER with definite length');
    my ($st, $out) = cms_verify($sig, $body, $ica);
    is($st, 0, 'openssl cms -verify accepts it') or diag $out;
    like($out, qr/Verification successful/, '... successful');

    my $signer = "$Scratch/signer.pem";
    cms_verify($sig, $body, $ica, '-signer', $signer);
    is(slurp($signer), device_cert('dev1')->{pem}, 'signer is dev1');
    my $print = cms_print($sig);
    like($print, qr/signingTime/, 'has a signingTime attribute');
    like($print, qr/eContent: <ABSENT>/, 'detached');
    my @certs = $print =~ /cert_info:/g;
    is(scalar @certs, 1, 'only the signer certificate');

    ($st) = cms_verify($sig, $body . ' ', $ica);
    isnt($st, 0, 'another body does not verify');

    my $ber = mdm_signature($body, 'dev1', ber => 1);
    my $bder = decode_base64($ber);
    is(substr($bder, 0, 2), "\x30\x80", 'BER: indefinite length');
    ($st, $out) = cms_verify($ber, $body, $ica);
    is($st, 0, 'BER signature verifies') or diag $out;
    like(cms_print($ber), qr/eContent: <ABSENT>/, 'BER: still detached');
    is(substr($bder, -6), "\0" x 6, 'BER: ends with end-of-contents octets');
    my $ber_na = mdm_signature($body, 'dev1', ber => 1, noattr => 1);
    ($st, $out) = cms_verify($ber_na, $body, $ica);
    is($st, 0, 'BER + noattr signature verifies') or diag $out;

    my $na = mdm_signature($body, 'dev1', noattr => 1);
    ($st, $out) = cms_verify($na, $body, $ica);
    is($st, 0, 'noattr signature verifies') or diag $out;
    unlike(cms_print($na), qr/signingTime/, 'noattr: no signingTime');

    my $d = device_cert('dev1');
    for my $who ($d, $d->{sha256}) {
        ($st) = cms_verify(mdm_signature('x', $who), 'x', $ica);
        is($st, 0, 'signer given as ' . (ref $who ? 'hashref' : 'sha256'));
    }

    my $chained = mdm_signature('x', 'dev1', chain => 1);
    ($st) = cms_verify($chained, 'x', "$PKI/ca.pem");
    is($st, 0, 'chain => 1 carries the intermediate');
    ($st) = cms_verify(mdm_signature('x', 'dev1'), 'x', "$PKI/ca.pem");
    isnt($st, 0, 'without chain the root alone is not enough');

    ($st) = cms_verify(mdm_signature('x', 'rogue1'), 'x', $ica);
    isnt($st, 0, 'rogue signer rejected by identity-ca.pem');

    my $fresh = mdm_signature('y', 'new-on-demand');
    ok(device_cert('new-on-demand'), 'unknown name creates the cert');
    ($st) = cms_verify($fresh, 'y', $ica);
    is($st, 0, '... and signs with it');

    ok(!eval { mdm_signature('x', 'dev1', bogus => 1); 1 },
       'unknown option dies');
};

subtest 'certificate headers' => sub {
    my $d = device_cert('dev1');

    my $rfc = rfc9440_header('dev1');
    like($rfc, qr{^:[A-Za-z0-9+/]+={0,2}:$}, 'RFC 9440 form');
    is(decode_base64(substr($rfc, 1, -1)), $d->{der}, 'decodes to the DER');

    my $esc = escaped_pem_header('dev1');
    like($esc, qr/^-----BEGIN%20CERTIFICATE-----%0AMII/, 'escaped PEM start');
    like($esc, qr/-----END%20CERTIFICATE-----%0A$/, 'escaped PEM end');
    like($esc, qr/^[A-Za-z0-9%._~-]+$/,
         'only unreserved characters and %XX');
    like($esc, qr/%2B|%2F|%3D/, '"+", "/", "=" are escaped');
    unlike($esc, qr/%(?:[0-9a-f][a-f]|[a-f][0-9])/, 'upper-case hex, like nginx');
    (my $pem = $esc) =~ s/%([0-9A-F]{2})/chr hex $1/ge;
    is($pem, $d->{pem}, 'unescapes to the PEM');
    $pem =~ /-----BEGIN CERTIFICATE-----\n(.*)-----END CERTIFICATE-----/s;
    is(decode_base64($1), $d->{der}, 'round trip to the same DER');
    my @lines = split /\n/, $pem;
    is(length $lines[1], 64, '64-column PEM lines (as OpenSSL writes)');

    my $plus = escaped_pem_header($d, plus => 1);
    like($plus, qr/^-----BEGIN\+CERTIFICATE-----%0A/, 'plus form');
    (my $p = $plus) =~ tr/+/ /;
    $p =~ s/%([0-9A-F]{2})/chr hex $1/ge;
    is($p, $d->{pem}, 'plus form unescapes (query rules) to the PEM');
};

# ---------------------------------------------------------------------------
subtest 'vectors and plist_set' => sub {
    ok(-d vectors_dir(), 'vectors_dir exists: ' . vectors_dir());
    ok(!eval { vector('no/such/file'); 1 }, 'missing vector dies');
    like(vectors_dir(), qr{/t/vectors$}, 'vectors live in the repository');
    ok(-f vectors_dir() . "/$_", "$_ kept beside its vectors")
        for qw(README.md nanomdm/LICENSE commandment/LICENSE.txt
               micromdm/LICENSE kmfddm/LICENSE scep/micromdm-scep/LICENSE);
    {
        local $ENV{MDM_VECTORS} = vectors_dir() . '/nanomdm';
        ok(length vector('LICENSE'), 'MDM_VECTORS is honoured');
    }

    my $udid = '66ADE930-5FDF-5EC4-8429-15640684C489';
    my $xml = vector('nanomdm/mdm/testdata/DeviceInformation.1.plist');
    is(plist_get($xml, 'UDID'), $udid, 'plist_get top-level UDID');
    is(plist_get($xml, 'Nope'), undef, 'plist_get missing key');
    like(plist_get($xml, 'QueryResponses'), qr/^<dict>.*HostName.*<\/dict>$/s,
         'plist_get of a dict returns its XML');

    my $new = plist_set($xml, UDID => 'NEW-UDID');
    is(plist_get($new, 'UDID'), 'NEW-UDID', 'top-level UDID replaced');
    like($new, qr{<key>UDID</key>\s*<string>\Q$udid\E</string>\s*</dict>\s*<key>RequestType}s,
         'nested QueryResponses/UDID untouched');
    (my $back = $new) =~ s/NEW-UDID/$udid/;
    is($back, $xml, 'nothing else changed');

    my $ins = plist_set($xml, EnrollmentID => 'E&1<2>');
    is(plist_get($ins, 'EnrollmentID'), 'E&1<2>', 'inserted key reads back');
    like($ins, qr{\t<key>Status</key>\n\t<string>Acknowledged</string>\n\t<key>UDID</key>\n\t<string>\Q$udid\E</string>\n\t<key>EnrollmentID</key>\n\t<string>E&amp;1&lt;2&gt;</string>\n</dict>\n</plist>\n$},
         'inserted, escaped and indented before the top-level </dict>');

    my $del = plist_set($xml, UDID => undef);
    is(plist_get($del, 'UDID'), undef, 'undef removes the key');
    like($del, qr{<string>Acknowledged</string>\n</dict>\n</plist>}, 'cleanly');
    like($del, qr{\Q$udid\E}, 'nested UDID still there');

    my $auth = vector('nanomdm/mdm/testdata/Authenticate.2.plist');
    is(plist_get($auth, 'Challenge'), 'YXBwbGU=', '<data> value, trimmed');
    my $multi = plist_set($auth, UDID => 'U1', SerialNumber => 'S1',
                          AwaitingConfiguration => \'<true/>',
                          Challenge => undef);
    is(plist_get($multi, 'UDID'), 'U1', 'several pairs: UDID');
    is(plist_get($multi, 'SerialNumber'), 'S1', 'several pairs: serial');
    is(plist_get($multi, 'AwaitingConfiguration'), 'true', 'raw XML value');
    is(plist_get($multi, 'Challenge'), undef, 'removed a <data> value');
    is(plist_get($multi, 'MessageType'), 'Authenticate', 'others kept');

    # Four-space indentation, DOCTYPE on the first line, <false/> values.
    my $user = vector('commandment/testdata/TokenUpdate/10.12.2-user.xml');
    my $u2 = plist_set($user, UserID => 'USER-1', NewKey => 'v');
    is(plist_get($u2, 'UserID'), 'USER-1', 'other layout: replace');
    is(plist_get($u2, 'NotOnConsole'), 'false', 'boolean read');
    like($u2, qr{\n        <key>NewKey</key>\n        <string>v</string>\n    </dict>},
         'other layout: insert with the same indentation');

    my $flat = '<plist><dict><key>A</key><string>1</string></dict></plist>';
    is(plist_set($flat, B => 2),
       '<plist><dict><key>A</key><string>1</string><key>B</key><string>2</string></dict></plist>',
       'compact plist');
    ok(!eval { plist_set('<plist><array/></plist>', A => 1); 1 },
       'not a dict plist dies');
};

# ---------------------------------------------------------------------------
# Blocks parsed and filtered by the real Test::Base, as the harness gets
# them. Not through Test::Base->import: it installs a source filter on the
# file being compiled, which breaks at run time.
sub blocks_from {
    my ($spec) = @_;
    require Test::Base;
    my $tb = Test::Base->new;
    $tb->_spec_string($spec);
    my $blocks = $tb->block_list;
    $_->run_filters for @$blocks;    # what Test::Base::blocks() does
    return @$blocks;
}

sub oks {
    my ($events) = @_;
    return grep { $_->isa('Test2::Event::Ok') } @$events;
}

subtest 'request_body follows the harness' => sub {
    is(t::MDM::request_body("  \n# comment\n  PUT /x\n  body \n\n", '', 1),
       'body', 'leading blank and # lines dropped, body trimmed');
    is(t::MDM::request_body("PUT /x\n  body \n", "Content-Length: 6\n", 1),
       "  body \n", 'not trimmed when more_headers sets Content-Length');
    is(t::MDM::request_body("PUT /x", '', 1), '', 'no body');
    is(t::MDM::request_body("PUT /x\r\n\r\na\r\nb\r\n", '', 0), "a\r\nb",
       'CRLF trimmed at the ends only');
    ok(!eval { t::MDM::request_body("PUT /x\nb", "Transfer-Encoding: chunked",
                                    1); 1 }, 'chunked dies');
};

subtest 'block sections' => sub {
    my $auth = vector('nanomdm/mdm/testdata/Authenticate.2.plist');
    (my $auth_body = $auth) =~ s/\s+\z//;
    my $ica = "$PKI/identity-ca.pem";

    my @b = blocks_from(<<"EOF" . <<'EOF2');
=== TEST 1: single request
--- request
  # a comment
PUT /mdm/checkin
$auth

--- more_headers
Content-Type: application/x-apple-aspen-mdm-checkin
--- signed_by: dev1
--- redis_setup
FLUSHALL
# comment
SET "a key" 'v 1'
RPUSH l x y
HSET h f "v w"
--- redis_check
GET "a key" => v 1
LRANGE l 0 -1 => x, y
LRANGE none 0 -1 => (empty)
GET nope => (nil)
GET "a key" => ~ ^v \\d\$
HGETALL h => f,v w
EXISTS l => 1
SET "x=>y" "a => b" => OK
GET 'x=>y' => a => b
EOF
=== TEST 2: two requests
--- request eval
["PUT /a\nbody-one\n", "PUT /b\n  body two  \n"]
--- more_headers
X-Test: 1
--- signed_by eval: ["dev1", "rogue2 issuer=rogue shared_key"]
--- signature_opts: ber
--- redis_setup
FLUSHALL
--- after_each eval
[ sub { redis('SET', 'hook', "req$_[2] $_[1]") }, sub { redis_stop() } ]
--- redis_check
GET hook => ~ ^\(error\) IO:

=== TEST 3: eval forms
--- request
GET /x
--- redis_setup eval
[ [qw(FLUSHALL)], "SET k v", [ 'RPUSH', 'l', 'a', 'b' ] ]
--- redis_check eval
[ [ [qw(GET k)], "v" ], [ "GET k", qr/^v$/ ], [ [qw(GET none)], undef ],
  [ [qw(LRANGE l 0 -1)], ['a', 'b'] ], [ "GET k", sub { $_[0] eq 'v' } ] ]

=== TEST 4: wrong expectations
--- request
GET /x
--- redis_setup
FLUSHALL
SET k v
--- redis_check
GET k => w
GET k => (nil)
GET k => ~ ^x
NOSUCHCMD => x
no arrow here

=== TEST 5: unsigned second request, packets
--- request eval
[ ["PUT /p\n", "part1", "part2\n"], "PUT /q\nzz" ]
--- more_headers eval
[ "A: 1", "B: 2\n" ]
--- signed_by eval: ["dev1", undef]
EOF2
    is(scalar @b, 5, 'parsed five blocks');

    # TEST 1
    my $r = t::MDM::preprocess_block($b[0]);
    is($r, $b[0], 'preprocess_block returns the block');
    my $mh = $b[0]->more_headers;
    ok(!ref $mh, 'single request: more_headers stays a string');
    like($mh, qr/^Content-Type: application\/x-apple-aspen-mdm-checkin\nMdm-Signature: [A-Za-z0-9+\/=]+\n\z/,
         'existing header kept, Mdm-Signature appended');
    my ($sig) = $mh =~ /Mdm-Signature: (\S+)/;
    my ($st, $out) = cms_verify($sig, $auth_body, $ica);
    is($st, 0, 'signature covers the body as the harness sends it')
        or diag $out;
    is(redis('GET', 'a key'), 'v 1', 'redis_setup ran (shellwords quoting)');
    is(redis('HGET', 'h', 'f'), 'v w', 'redis_setup: quoted value');

    my $ev = intercept { t::MDM::check_response($b[0], 'body', 0, 0, undef) };
    my @ok = oks($ev);
    is(scalar @ok, 9, 'one test per redis_check line');
    is(scalar(grep { $_->pass } @ok), 9, 'all pass')
        or diag join "\n", map { $_->name } grep { !$_->pass } @ok;
    is($ok[0]->name, 'TEST 1: single request - redis_check: GET "a key"',
       'test name');

    # TEST 2
    t::MDM::preprocess_block($b[1]);
    $mh = $b[1]->more_headers;
    is(ref $mh, 'ARRAY', 'two requests: more_headers arrayref');
    is(scalar @$mh, 2, 'one header block per request');
    my @sigs = map { /Mdm-Signature: (\S+)/ ? $1 : '' } @$mh;
    like($mh->[$_], qr/^X-Test: 1\n/, "request $_ keeps X-Test") for 0, 1;
    is(substr(decode_base64($sigs[$_]), 0, 2), "\x30\x80",
       "request $_: BER signature") for 0, 1;
    ($st, $out) = cms_verify($sigs[0], 'body-one', $ica);
    is($st, 0, 'request 0 signed by dev1 over "body-one"') or diag $out;
    ($st, $out) = cms_verify($sigs[1], 'body two', "$PKI/rogue-ca.pem");
    is($st, 0, 'request 1 signed by the rogue cert over "body two"')
        or diag $out;
    ok(device_cert('rogue2')->{issuer} eq 'rogue', 'signed_by options used');

    $ev = intercept { t::MDM::check_response($b[1], 'resp0', 0, 0, undef) };
    is(scalar(oks($ev)), 0, 'no redis_check before the last request');
    is(redis('GET', 'hook'), 'req0 resp0', 'after_each[0] ran with args');
    $ev = intercept { t::MDM::check_response($b[1], 'resp1', 1, 0, undef) };
    @ok = oks($ev);
    is(scalar @ok, 1, 'redis_check after the last request');
    ok($ok[0]->pass, 'after_each[1] stopped Redis before the check');
    ok(port_refuses(redis_port()), 'Redis is down after the block');

    # TEST 3: the next block starts with Redis running again.
    t::MDM::preprocess_block($b[2]);
    is(redis('PING'), 'PONG', 'preprocess restarted Redis');
    is_deeply(redis('LRANGE', 'l', 0, -1), [ 'a', 'b' ],
              'redis_setup eval ran');
    $ev = intercept { t::MDM::check_response($b[2], '', 0, 0, undef) };
    @ok = oks($ev);
    is(scalar @ok, 5, 'redis_check eval: five checks');
    is(scalar(grep { $_->pass } @ok), 5, 'all pass')
        or diag join "\n", map { $_->name } grep { !$_->pass } @ok;

    # TEST 4: every wrong expectation fails, clearly.
    t::MDM::preprocess_block($b[3]);
    $ev = intercept { t::MDM::check_response($b[3], '', 0, 0, undef) };
    @ok = oks($ev);
    is(scalar @ok, 5, 'five results');
    is(scalar(grep { !$_->pass } @ok), 5, 'all five fail');
    like($ok[3]->name, qr/redis_check: NOSUCHCMD$/, 'named after the command');
    like($ok[4]->name, qr/malformed line.*no arrow here/, 'malformed line');
    my $diag = join '', map { $_->message }
                        grep { $_->isa('Test2::Event::Diag') } @$ev;
    like($diag, qr/got: 'v'\n\s*#?\s*expected: 'w'/, 'diag shows got/expected');
    like($diag, qr/\(error\) ERR unknown command/, 'diag shows the Redis error');

    $ev = intercept { t::MDM::check_response($b[3], '', 0, 0, 'dry run') };
    is(scalar(grep { $_->isa('Test2::Event::Skip') } @$ev), 4,
       'dry run: checks are skipped');

    # TEST 5: packets, per-request more_headers, one request unsigned.
    t::MDM::preprocess_block($b[4]);
    $mh = $b[4]->more_headers;
    like($mh->[0], qr/^A: 1\nMdm-Signature: \S+\n\z/, 'packets: signed');
    is($mh->[1], "B: 2\n", 'undef signer: request left unsigned');
    ($sig) = $mh->[0] =~ /Mdm-Signature: (\S+)/;
    ($st) = cms_verify($sig, 'part1part2', $ica);
    is($st, 0, 'body spans the packets');

    # repeat_each(2): redis_setup runs again before the second repetition.
    my @rb = blocks_from(<<'EOF');
=== TEST 6: repeated
--- request
GET /x
--- redis_setup
FLUSHALL
INCR c
--- redis_check
GET c => 1
EOF
    no warnings 'once';
    local *Test::Nginx::Socket::repeat_each = sub { 2 };
    t::MDM::preprocess_block($rb[0]);
    redis('INCR', 'c');    # as if nginx had changed the state
    $ev = intercept { t::MDM::check_response($rb[0], '', 0, 0, undef) };
    ok(!(oks($ev))[0]->pass, 'repetition 0 sees the changed state');
    is(redis('GET', 'c'), 1, 'state reset for repetition 1');
    redis('INCR', 'c');
    $ev = intercept { t::MDM::check_response($rb[0], '', 0, 1, undef) };
    is(redis('GET', 'c'), 2, 'no reset after the last repetition');

    my @bad = blocks_from(<<'EOF');
=== TEST 7: after_each eval error
--- request
GET /x
--- after_each eval
[ sub { ]
EOF
    ok(!eval { t::MDM::preprocess_block($bad[0]); 1 },
       'after_each eval error is reported');
    like($@, qr/TEST 7: after_each eval error - --- after_each eval failed: syntax error/,
         '... clearly');

    @bad = blocks_from(<<'EOF');
=== TEST 8: request eval dies
--- request eval
"PUT /x\n" . vector("no/such/vector")
EOF
    ok(!eval { t::MDM::preprocess_block($bad[0]); 1 },
       'a dying request eval is reported, not sent');
    like($@, qr/TEST 8: request eval dies - --- request eval failed: vector 'no\/such\/vector'/,
         '... with the Perl error');
};

# ---------------------------------------------------------------------------
subtest 'http_request and concurrent_requests' => sub {
    is(http_request('PUT', '/mdm', 'abc', { 'Content-Type' => 'x/y' }),
       "PUT /mdm HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
       . "Content-Type: x/y\r\nContent-Length: 3\r\n\r\nabc",
       'http_request');
    is(http_request('GET', '/', undef, [ Host => 'h', 'X-A' => 1, 'X-A' => 2 ]),
       "GET / HTTP/1.1\r\nConnection: close\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
       'http_request with ordered pairs, no body');

    # The server accepts every connection before answering any, then
    # answers in reverse order: a client that did not open them all at once
    # would time out.
    my $n = 6;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Listen => 64,
                                       ReuseAddr => 1) or die $!;
    my $port = $listen->sockport;
    my $pid = fork // die;
    if (!$pid) {
        alarm 10;
        my @c;
        push @c, scalar $listen->accept while @c < $n;
        my @req;
        for my $c (@c) {
            my $buf = '';
            sysread($c, $buf, 65536, length $buf) until $buf =~ /\r\n\r\n/;
            my ($len) = $buf =~ /Content-Length: (\d+)/i;
            $len //= 0;
            sysread($c, $buf, 65536, length $buf)
                while length($buf) - index($buf, "\r\n\r\n") - 4 < $len;
            push @req, $buf;
        }
        for my $i (reverse 0 .. $#c) {
            my ($path) = $req[$i] =~ m{^\w+ (\S+)};
            my ($body) = $req[$i] =~ /\r\n\r\n(.*)\z/s;
            my $out = "echo:$path:$body";
            my $resp;
            if ($path eq '/chunked') {
                $resp = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
                      . "X-Dup: a\r\nX-Dup: b\r\n\r\n"
                      . "5;ext=1\r\n" . substr($out, 0, 5) . "\r\n"
                      . sprintf('%x', length($out) - 5) . "\r\n"
                      . substr($out, 5) . "\r\n0\r\n\r\n";
            } elsif ($path eq '/eof') {
                $resp = "HTTP/1.0 404 Not Found\r\n\r\n$out";
            } else {
                $resp = "HTTP/1.1 200 OK\r\nContent-Length: " . length($out)
                      . "\r\n\r\n${out}trailing-garbage";
            }
            print {$c[$i]} $resp;
            close $c[$i];
        }
        POSIX::_exit(0);
    }
    close $listen;

    my @reqs = map { http_request('PUT', "/r$_", "body $_" x ($_ * 1000)) }
               0 .. $n - 3;
    push @reqs, http_request('POST', '/chunked', 'c'),
                http_request('GET', '/eof');

    my $t = time;
    my $res = concurrent_requests($port, \@reqs, timeout => 5);
    my $took = time - $t;
    waitpid($pid, 0);
    is($?, 0, 'test server saw all connections at once');
    cmp_ok($took, '<', 3, 'no timeout');
    is(scalar @$res, $n, "$n responses");
    for my $i (0 .. $n - 3) {
        is($res->[$i]{status}, 200, "response $i status");
        is($res->[$i]{body}, "echo:/r$i:" . ("body $i" x ($i * 1000)),
           "response $i body (cut at Content-Length)");
        ok(!defined $res->[$i]{error}, "response $i: no error");
    }
    is($res->[-2]{status}, 201, 'chunked: status');
    is($res->[-2]{body}, 'echo:/chunked:c', 'chunked: decoded body');
    is($res->[-2]{headers}{'x-dup'}, 'a, b', 'repeated headers joined');
    is($res->[-1]{status}, 404, 'read-to-EOF response: status');
    is($res->[-1]{body}, 'echo:/eof:', 'read-to-EOF response: body');

    # A server that never answers, and a closed port.
    my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Listen => 5) or die $!;
    $res = concurrent_requests($mute->sockport, [ http_request('GET', '/') ],
                               timeout => 0.5);
    like($res->[0]{error}, qr/timeout/, 'timeout reported');
    is($res->[0]{status}, undef, '... without a status');
    my $closed = $mute->sockport;
    close $mute;
    $res = concurrent_requests($closed, [ http_request('GET', '/') ],
                               timeout => 2);
    like($res->[0]{error}, qr/refused/i, 'refused connection reported');
};

# ---------------------------------------------------------------------------
subtest 'cleanup at exit' => sub {
    # A test file that dies must still stop its Redis and remove its files.
    my ($st, $out) = run($^X, "-I$FindBin::Bin/..", '-e',
        'use t::MDM; print "$ENV{TEST_NGINX_REDIS_PORT} $ENV{TEST_NGINX_PKI}\n";'
        . ' die "boom\n"');
    isnt($st, 0, 'child died');
    my ($port, $pki) = $out =~ /^(\d+) (\S+)$/m;
    ok($port, 'child had a Redis port') or diag $out;
    ok(port_refuses($port), "its Redis is gone");
    ok(!-e $pki, 'its PKI directory is gone');

    # Even SIGKILL (no END) must not leave redis-server running.
    pipe(my $r, my $w) or die $!;
    my $pid = fork // die;
    if (!$pid) {
        close $r;
        open STDOUT, '>&', $w or POSIX::_exit(3);
        # Its temp dirs survive SIGKILL: keep them inside our scratch dir.
        $ENV{TMPDIR} = $Scratch;
        { no warnings 'exec';
          exec $^X, "-I$FindBin::Bin/..", '-e',
              'use t::MDM; $| = 1; print "$ENV{TEST_NGINX_REDIS_PORT}\n";'
              . ' sleep 30'; }
        POSIX::_exit(4);
    }
    close $w;
    my $kport = <$r>;
    chomp $kport if defined $kport;
    ok($kport && !port_refuses($kport), 'child has a running Redis');
    kill 'KILL', $pid;
    waitpid($pid, 0);
    my $deadline = time + 3;
    sleep 0.02 until port_refuses($kport) || time > $deadline;
    ok(port_refuses($kport), 'its Redis dies with it on SIGKILL');

    # Only the owning process may stop or start Redis.
    my $fpid = fork // die;
    if (!$fpid) {
        POSIX::_exit(eval { redis_stop(); 1 } ? 1 : 0);
    }
    waitpid($fpid, 0);
    is($? >> 8, 0, 'redis_stop refuses to run in a forked child');
    is(redis('PING'), 'PONG', 'Redis still up');
};

cmp_ok(time - $T0, '<', 15, sprintf('self-test took %.1f s', time - $T0));

done_testing;
