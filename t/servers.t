# Self-test of the fake APNs (t/servers/apns.pl) and webhook receiver
# (t/servers/webhook.pl) and of t::MDMServers.
#
#     prove -I. -I t/lib t/servers.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;

use File::Temp ();
use IO::Select;
use POSIX ();
use IO::Socket::INET;
use IO::Socket::SSL;
use JSON::PP qw(decode_json);
use Protocol::HTTP2::Client;
use Time::HiRes qw(time sleep);

my $TOPIC_RE = qr/^com\.apple\.mgmt\.External\.[0-9a-f-]{36}$/;

sub tok { sprintf '%064x', $_[0] }

# run(@cmd) -> (exit status, stdout, stderr); no shell.
my $TmpDir = File::Temp::tempdir('mdm-servers-t-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
sub run {
    my @cmd = @_;
    my ($out, $err) = ("$TmpDir/out", "$TmpDir/err");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $? >> 8;
    return ($rc, slurp_file($out), slurp_file($err));
}

# curl(@args) -> (exit status, stdout, stderr)
sub curl { return run('curl', '-sS', @_) }

sub slurp_file {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return scalar <$fh>;
}

# ---------------------------------------------------------------------------
# Push certificates
# ---------------------------------------------------------------------------

my $push = make_push_cert();
like($push->{topic}, $TOPIC_RE, 'push cert: topic is com.apple.mgmt.External.<uuid>');
is($push->{subject}, "/UID=$push->{topic}/CN=APSP:$push->{uuid}/C=US",
   'push cert: subject layout');
{
    my ($rc, $out) = run('openssl', 'x509', '-noout', '-subject',
                                     '-nameopt', 'RFC2253', '-in', $push->{cert});
    like($out, qr/^subject=C=US,CN=APSP:\Q$push->{uuid}\E,UID=\Q$push->{topic}\E$/m,
         'push cert: openssl sees UID, CN, C');
    ($rc) = run('openssl', 'verify', '-CAfile', $push->{ca},
                            $push->{cert});
    is($rc, 0, 'push cert verifies against its CA');
    like($push->{pem}, qr/BEGIN CERTIFICATE/, 'pem text');
    like($push->{key_pem}, qr/BEGIN PRIVATE KEY/, 'unencrypted key text');
    is($push->{ca}, apple_ca(), 'signed by the shared fake Apple CA');
}
my $push2 = make_push_cert(topic => 'com.apple.mgmt.External.second-topic');
is($push2->{topic}, 'com.apple.mgmt.External.second-topic', 'topic option');
my $expired = make_push_cert(expired => 1);
my $rogue = make_push_cert(untrusted => 1);
isnt($rogue->{ca}, apple_ca(), 'untrusted cert has another CA');

# ---------------------------------------------------------------------------
# APNs: TLS and client certificates
# ---------------------------------------------------------------------------

my $apns = start_apns(client_ca => $push->{ca});
like($apns->{url}, qr{^https://127\.0\.0\.1:\d+$}, "apns url $apns->{url}");
ok(kill(0, $apns->{pid}), 'apns running');
is($apns->{server_ca}, "$ENV{TEST_NGINX_PKI}/ca.pem", 'server_ca from the suite PKI');

my @tls = ('--http2', '--cacert', $apns->{server_ca});
my @auth = (@tls, '--cert', $push->{cert}, '--key', $push->{key});
my $magic = '{"mdm":"7F1B2E2C-0C69-4C51-8D89-06A4E8E8A1C1"}';

{
    my ($rc, $out, $err) = curl(@tls, '-d', $magic,
                                "$apns->{url}/3/device/" . tok(1));
    isnt($rc, 0, 'no client certificate: curl fails');
    like($err, qr/certificate required|alert|SSL/i, 'TLS-level failure')
        or diag $err;
    for my $bad ([ expired => $expired ], [ untrusted => $rogue ]) {
        ($rc, $out, $err) = curl(@tls, '--cert', $bad->[1]{cert},
                                 '--key', $bad->[1]{key}, '-d', $magic,
                                 "$apns->{url}/3/device/" . tok(1));
        isnt($rc, 0, "$bad->[0] client certificate: curl fails");
    }
    is(scalar(apns_requests($apns)), 0, 'nothing logged for rejected handshakes');
    like(slurp_file($apns->{stderr}), qr/handshake failed/, 'stderr tells why');
}

# One good push with every APNs header.
my $apns_id = 'B7A8A3A0-1D2C-4A5B-9C8D-0E1F2A3B4C5D';
{
    my ($rc, $out, $err) = curl(@auth, '-i', '-d', $magic,
        '-H', 'apns-push-type: mdm', '-H', "apns-topic: $push->{topic}",
        '-H', 'apns-priority: 10', '-H', 'apns-expiration: 0',
        '-H', "apns-id: $apns_id", '-H', 'content-type: application/json',
        "$apns->{url}/3/device/" . tok(1));
    is($rc, 0, 'with the push certificate: curl succeeds') or diag $err;
    like($out, qr{^HTTP/2 200}, 'HTTP/2 200');
    like($out, qr/^apns-id: \Q$apns_id\E\r?$/mi, 'apns-id echoed');

    ($rc, $out) = curl(@auth, '-i', '-d', $magic,
                       "$apns->{url}/3/device/" . tok(2));
    like($out, qr/^apns-id: [0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\r?$/m,
         'apns-id generated when not sent');

    my @r = apns_wait($apns, 2);
    is(scalar @r, 2, 'two requests logged');
    my $e = $r[0];
    is($e->{method}, 'POST', 'log: method');
    is($e->{path}, '/3/device/' . tok(1), 'log: path');
    is($e->{token}, tok(1), 'log: token');
    is($e->{body}, $magic, 'log: body');
    is($e->{client_uid}, $push->{topic}, 'log: client_uid is the topic');
    is($e->{client_subject}, $push->{subject}, 'log: client_subject');
    is($e->{headers}{'apns-push-type'}, 'mdm', 'log: apns-push-type');
    is($e->{headers}{'apns-topic'}, $push->{topic}, 'log: apns-topic');
    is($e->{headers}{'apns-priority'}, '10', 'log: apns-priority');
    is($e->{headers}{'apns-expiration'}, '0', 'log: apns-expiration');
    is($e->{headers}{'apns-id'}, $apns_id, 'log: apns-id');
    is($e->{headers}{'content-type'}, 'application/json', 'log: content-type');
    is($e->{status}, 200, 'log: answered status');
    is($e->{apns_id}, $apns_id, 'log: answered apns-id');
    ok($e->{conn} >= 1 && $e->{stream} >= 1, "log: conn $e->{conn} stream $e->{stream}");
    isnt($r[1]{conn}, $e->{conn}, 'a second curl is a second connection');
    ok(abs($e->{time} - time) < 30, 'log: time');
}

# ---------------------------------------------------------------------------
# APNs: rules
# ---------------------------------------------------------------------------

# apns_status(token, extra curl args) -> (http code, parsed body or undef, headers)
sub apns_status {
    my ($token, @extra) = @_;
    my ($rc, $out, $err) = curl(@auth, '-i', '-d', $magic, @extra,
                                "$apns->{url}/3/device/$token");
    return (0, undef, $err) if $rc;
    my ($head, $body) = split /\r?\n\r?\n/, $out, 2;
    my ($code) = $head =~ m{^HTTP/2 (\d+)};
    my $json = length($body // '') ? eval { decode_json($body) } : undef;
    return ($code, $json, $head);
}

apns_clear($apns);
apns_rules($apns, { tokens => { tok(410) => { status => 410,
                                              reason => 'Unregistered',
                                              timestamp => 1700000000000 },
                                tok(400) => { status => 400 } } });
{
    my ($code, $json, $head) = apns_status(tok(410));
    is($code, 410, 'token rule: 410');
    is_deeply($json, { reason => 'Unregistered', timestamp => 1700000000000 },
              '410 body has reason and timestamp');
    like($head, qr/^apns-id: /mi, 'error responses carry apns-id');
    ($code, $json) = apns_status(tok(400));
    is($code, 400, 'token rule: 400');
    is_deeply($json, { reason => 'BadDeviceToken' }, 'default reason for 400');
    ($code, $json) = apns_status(tok(3));
    is($code, 200, 'other tokens: 200');
    is($json, undef, '200 has no body');
}

apns_rules($apns, { status => 429, default => { status => 500 },
                    tokens => { tok(410) => { status => 410 } } });
{
    my ($code, $json) = apns_status(tok(4));
    is($code, 429, 'top-level status applies to every token');
    is_deeply($json, { reason => 'TooManyRequests' }, '429 reason');
    ($code, $json) = apns_status(tok(410));
    is($code, 410, 'but not over token rules');
    ok($json->{timestamp} > 1_600_000_000_000, '410 timestamp defaults to now (ms)');
}

apns_rules($apns, { default => { status => 500 } });
{
    my ($code, $json) = apns_status(tok(5));
    is($code, 500, 'default rule');
    is_deeply($json, { reason => 'InternalServerError' }, '500 reason');
}

apns_rules($apns, undef);
{
    my ($code, $json) = apns_status(tok(6), '-H', 'apns-topic: com.apple.mgmt.External.other');
    is($code, 400, 'topic other than the certificate UID: 400');
    is($json->{reason}, 'TopicDisallowed', '... TopicDisallowed');
    ($code, $json) = apns_status('xyz');
    is($json->{reason}, 'BadDeviceToken', 'non-hex token: BadDeviceToken');
    ($code, $json) = apns_status(tok(7), '-H', 'apns-priority: 7');
    is($json->{reason}, 'BadPriority', 'bad priority');
    ($code, $json) = apns_status(tok(7), '-H', 'apns-push-type: bogus');
    is($json->{reason}, 'InvalidPushType', 'bad push type');
    ($code, $json) = apns_status(tok(7), '-X', 'GET');
    is($code, 405, 'GET: 405');
    ($code, $json) = apns_status(tok(8));
    is($code, 200, 'no rules file: 200');
    apns_rules($apns, { strict => JSON::PP::false });
    ($code, $json) = apns_status(tok(9), '-X', 'GET');
    is($code, 200, 'strict off: no validation');
    apns_rules($apns, undef);
}

my @r = apns_requests($apns);
is_deeply([ map { $_->{status} } @r ],
          [ 410, 400, 200, 429, 410, 500, 400, 400, 400, 400, 405, 200, 200 ],
          'every request logged with its answer');

# close_after: 2 answered on a connection, the third dropped unanswered.
apns_clear($apns);
apns_rules($apns, { close_after => 2 });
{
    my @urls = map { "$apns->{url}/3/device/" . tok(20 + $_) } 1 .. 3;
    my ($rc, $out, $err) = curl(@auth, '-d', $magic, '-o', '/dev/null',
                                '-o', '/dev/null', '-o', '/dev/null',
                                '--retry', '0', '-w', '%{http_code}\n', @urls);
    my @codes = split /\n/, $out;
    is_deeply([ @codes[0, 1] ], [ 200, 200 ], 'close_after: first two answered');
    @r = apns_requests($apns);
    my @closed = grep { $_->{closed} } @r;
    is(scalar @closed, 1, 'one request logged as closed');
    is($closed[0]{token}, tok(23), '... the third');
    is($closed[0]{conn}, $r[0]{conn}, '... on the same connection');
    ok(!defined $closed[0]{status}, '... without status');
    like($err, qr/not closed cleanly|closed|reset|Recv failure|error/i,
         'curl saw the connection drop') or diag "rc=$rc err=$err";
}
apns_rules($apns, undef);

# ---------------------------------------------------------------------------
# APNs: many streams on one connection
# ---------------------------------------------------------------------------

# 200 requests, 100 at a time (curl 7.88 puts at most 100 streams on one
# connection: CURLMOPT_MAX_CONCURRENT_STREAMS), each answer held 200 ms.
apns_clear($apns);
apns_rules($apns, { delay_ms => 200 });
{
    my $cfg = "$apns->{dir}/curl-urls.cfg";
    open my $fh, '>', $cfg or die;
    printf {$fh} "url = \"%s/3/device/%s\"\noutput = \"/dev/null\"\n",
                 $apns->{url}, tok(1000 + $_) for 1 .. 200;
    close $fh;
    my $t0 = time;
    my ($rc, $out, $err) = curl(@auth, '--parallel', '--parallel-max', 100,
                                '-Z', '-d', $magic, '-H', 'apns-push-type: mdm',
                                '-w', '%{http_code} %{http_version}\n',
                                '-K', $cfg);
    my $took = time - $t0;
    my @lines = split /\n/, $out;
    is(scalar(grep { $_ eq '200 2' } @lines), 200, '200 parallel: all 200 over HTTP/2')
        or diag "rc=$rc $err";
    @r = apns_wait($apns, 200);
    my %conns = map { $_->{conn} => 1 } @r;
    is(scalar(keys %conns), 1, '... all on ONE connection (conn ' . join(',', keys %conns) . ')');
    my %streams = map { $_->{stream} => 1 } @r;
    is(scalar(keys %streams), 200, '... 200 distinct streams');
    ok($took < 200 * 0.2 / 10, sprintf('... concurrently (%.2f s for 200 x 200 ms)', $took));
}
apns_rules($apns, undef);

# An HTTP/2 client that keeps up to $window streams open on one connection.
# Returns { status => {code => count}, refused => n, conn => ..., took => s }.
sub h2_burst {
    my (%a) = @_;
    my $srv = $a{srv};
    my $sock = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $srv->{port},
        SSL_ca_file => $srv->{server_ca}, SSL_verifycn_name => 'localhost',
        SSL_cert_file => $a{cert}{cert}, SSL_key_file => $a{cert}{key},
        SSL_alpn_protocols => ['h2'],
    ) or die "h2 connect: " . IO::Socket::SSL::errstr();
    die "ALPN is not h2\n" unless ($sock->alpn_selected // '') eq 'h2';
    my $client = Protocol::HTTP2::Client->new(keepalive => 1);
    my ($sent, $done, $refused, %status) = (0, 0, 0);
    my @phases = $a{phases} ? @{ $a{phases} } : ([ $a{n}, $a{window} ]);
    my ($n, $window) = (0, 0);
    my $send = sub {
        my $i = ++$sent;
        $client->request(
            ':scheme' => 'https', ':authority' => "127.0.0.1:$srv->{port}",
            ':path' => '/3/device/' . tok($a{base} + $i), ':method' => 'POST',
            headers => [ 'apns-push-type' => 'mdm',
                         'apns-topic' => $a{cert}{topic},
                         'apns-expiration' => 0,
                         'content-type' => 'application/json' ],
            data => $magic,
            on_done => sub { my %h = @{ $_[0] }; $status{ $h{':status'} }++; $done++ },
            on_error => sub { $refused++ if $_[0] == 7; $done++ },
        );
    };
    my $t0 = time;
    my $deadline = $t0 + 30;
    my $sel = IO::Select->new($sock);
    # Each phase starts when the previous one is finished, on the same
    # connection.
    while (time < $deadline) {
        if ($done >= $n) {
            last unless @phases;
            my ($more, $w) = @{ shift @phases };
            $n += $more;
            $window = $w;
        }
        $send->() while $sent < $n && $sent - $done < $window;
        my $out = '';
        while (my $f = $client->next_frame) { $out .= $f }
        while (length $out) {
            my $w = syswrite($sock, $out) // die "write: $!";
            substr($out, 0, $w, '');
        }
        next unless $sock->pending || $sel->can_read(1);
        my $got = sysread($sock, my $buf, 65536);
        last unless $got;
        $client->feed($buf);
    }
    my $took = time - $t0;
    close $sock;
    return { status => \%status, refused => $refused, done => $done,
             took => $took };
}

apns_clear($apns);
apns_rules($apns, { delay_ms => 300 });
{
    my $res = h2_burst(srv => $apns, cert => $push, n => 1000, window => 450,
                       base => 5000);
    is($res->{status}{200}, 1000, sprintf('1000 pushes on one connection, 450 in flight: all 200 (%.2f s)', $res->{took}));
    ok($res->{took} < 10, '... in a few seconds');
    @r = apns_wait($apns, 1000);
    my %conns = map { $_->{conn} => 1 } @r;
    is(scalar(keys %conns), 1, '... one conn number in the log');
    is(scalar(grep { $_->{client_uid} eq $push->{topic} } @r), 1000, '... each with the topic');
}
apns_rules($apns, undef);

# --max-streams: streams over the limit are refused, the connection lives on.
{
    my $small = start_apns(client_ca => $push->{ca}, max_streams => 5,
                           rules => { delay_ms => 200 });
    my $res = h2_burst(srv => $small, cert => $push, base => 9000,
                       phases => [ [ 10, 10 ], [ 20, 5 ] ]);
    is($res->{refused}, 5, 'max_streams 5, 10 streams at once: five refused (REFUSED_STREAM)');
    is($res->{status}{200}, 25, '... five answered, then 20 more, 5 at a time, on the same connection (HPACK intact)');
    my %conns = map { $_->{conn} => 1 } apns_requests($small);
    is(scalar(keys %conns), 1, '... one connection');
    like(slurp_file($small->{stderr}), qr/refused/, '... refusals noted on stderr');
    my $pid = $small->{pid};
    ok(stop_server($small), 'stop_server');
    ok(!kill(0, $pid), 'stopped');
}

# A second push certificate (another topic) is another client_uid.
{
    my ($rc) = curl('--http2', '--cacert', $apns->{server_ca},
                    '--cert', $push2->{cert}, '--key', $push2->{key},
                    '-d', $magic, "$apns->{url}/3/device/" . tok(77));
    is($rc, 0, 'second push cert accepted');
    my ($e) = grep { ($_->{token} // '') eq tok(77) } apns_requests($apns);
    is($e->{client_uid}, 'com.apple.mgmt.External.second-topic', 'its topic logged');
}

# ---------------------------------------------------------------------------
# Webhook receiver
# ---------------------------------------------------------------------------

my $hook = start_webhook();
like($hook->{url}, qr{^http://127\.0\.0\.1:\d+$}, "webhook url $hook->{url}");
my $event = '{"topic":"mdm.Authenticate","event_id":"3f9c2a7e51d04b8a","checkin_event":{"udid":"U1","raw_payload":"PD94"}}';
{
    my ($rc, $out, $err) = curl('-i', '-H', 'Content-Type: application/json; charset=utf-8',
                                '-H', 'X-Hmac-Signature: abc=',
                                '--data-binary', $event, "$hook->{url}/webhook");
    like($out, qr{^HTTP/1.1 200}, 'webhook: 200');
    my @w = webhook_wait($hook, 1);
    is(scalar @w, 1, 'webhook: logged');
    is($w[0]{method}, 'POST', 'method');
    is($w[0]{path}, '/webhook', 'path');
    is($w[0]{body}, $event, 'body, exact bytes');
    is($w[0]{headers}{'content-type'}, 'application/json; charset=utf-8', 'content-type');
    is($w[0]{headers}{'x-hmac-signature'}, 'abc=', 'x-hmac-signature');
    is($w[0]{status}, 200, 'answered status logged');
}

webhook_rules($hook, { status => 500 });
{
    my ($rc, $out) = curl('-o', '/dev/null', '-w', '%{http_code}', '-d', $event,
                          "$hook->{url}/webhook");
    is($out, '500', 'rules: 500');
    my @w = webhook_requests($hook);
    is($w[-1]{status}, 500, '500 logged');
}

webhook_rules($hook, { sequence => [ 503 ], paths => { '/ok' => { status => 204 } } });
{
    my ($rc, $out) = curl('-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null',
                          '-w', '%{http_code} %{num_connects}\n', '-d', $event,
                          "$hook->{url}/webhook", "$hook->{url}/webhook",
                          "$hook->{url}/ok?x=1");
    is($out, "503 1\n200 0\n204 0\n", 'sequence, then default, then per-path; keep-alive');
    my @w = webhook_requests($hook);
    is($w[-1]{conn}, $w[-3]{conn}, 'keep-alive: one connection');
    is($w[-1]{path}, '/ok?x=1', 'path keeps the query');
}
webhook_rules($hook, { delay_ms => 300, body => 'later', headers => { 'X-Test' => 'yes' } });
{
    my $t0 = time;
    my ($rc, $out) = curl('-i', '-d', $event, "$hook->{url}/webhook");
    ok(time - $t0 >= 0.3, 'delay_ms');
    like($out, qr/^X-Test: yes\r?$/m, 'extra headers');
    like($out, qr/later$/, 'body');
}
webhook_rules($hook, { close => 1 });
{
    my ($rc, $out, $err) = curl('-d', $event, "$hook->{url}/webhook");
    isnt($rc, 0, 'close: curl gets no answer');
    my @w = webhook_requests($hook);
    ok($w[-1]{closed} && !defined $w[-1]{status}, 'logged as closed');
}
webhook_rules($hook, undef);

# Concurrent connections: a stalled one does not block the others.
{
    webhook_clear($hook);
    my $stalled = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                        PeerPort => $hook->{port}) or die;
    syswrite($stalled, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    my ($rc, $out) = curl('-o', '/dev/null', '-w', '%{http_code}',
                          '-H', 'Transfer-Encoding: chunked', '-H', 'Expect: 100-continue',
                          '--data-binary', $event, "$hook->{url}/chunked");
    is($out, '200', 'other connection answered while one is stalled (chunked, 100-continue)');
    syswrite($stalled, "67890");
    my $resp = '';
    IO::Select->new($stalled)->can_read(5);
    sysread($stalled, $resp, 4096);
    like($resp, qr{^HTTP/1.1 200}, 'stalled one answered once complete');
    my @w = webhook_wait($hook, 2);
    is($w[0]{path}, '/chunked', 'chunked logged first');
    is($w[0]{body}, $event, 'chunked body reassembled');
    is($w[1]{body}, '1234567890', 'stalled body');
    isnt($w[0]{conn}, $w[1]{conn}, 'two connections');
}

# Parallel posts.
{
    webhook_clear($hook);
    my @urls = map { "$hook->{url}/p$_" } 1 .. 30;
    my ($rc, $out) = curl('-Z', '--parallel-max', 30, '-d', $event,
                          (map { ('-o', '/dev/null') } @urls),
                          '-w', '%{http_code}\n', @urls);
    is(scalar(grep { $_ eq '200' } split /\n/, $out), 30, '30 parallel posts answered');
    is(scalar(webhook_wait($hook, 30)), 30, '... and logged');
}

ok(stop_server($hook), 'stop webhook');
ok(stop_server($apns), 'stop apns');

done_testing();
