# mdm-worker, more: the re-push schedule and its backoff, webhook dead
# letters, 403 BadCertificate, TLS failures, a 400 for every token, several
# workers on one Redis, SIGTERM in the middle of a burst, several topics at
# once, and Redis down when the worker starts.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use MIME::Base64 qw(encode_base64);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

no_shuffle();

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $CERT = make_push_cert();                         # topic A
our $TOPIC = $CERT->{topic};
our $CERT_B = make_push_cert(uuid => 'topic-b-0001');  # topic B, also trusted
our $TOPIC_B = $CERT_B->{topic};
our $ROGUE = make_push_cert(untrusted => 1);          # not trusted by APNs
our $TOPIC_R = $ROGUE->{topic};
our $GOOD_R = make_push_cert(topic => $TOPIC_R, uuid => 'good-0001');
our $APNS = start_apns(max_streams => 1000);
our $UDID = "66ADE930-5FDF-5EC4-8429-15640684C489";   # the "mac" vectors'
our (@WS, $W, $HOOK, %S);

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        large_client_header_buffers 4 64k;
        location /v1/ { mdm_api; mdm_api_key $KEY; }
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
        }
    },
);

sub worker (%) {
    my $w = start_worker(apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                         push_backoff_ms => 100, repush_interval => 0,
                         worker_id => 'w1', @_);
    push @WS, $w;
    return $w;
}

# SIGTERM to every worker still running: their exit statuses (a list, or
# joined with commas in scalar context)
sub stop_all () {
    my @st = map { stop_worker($_) } @WS;
    @WS = ();
    return wantarray ? @st : join(",", map { $_ // "killed" } @st);
}

sub token ($) { sprintf "%064x", $_[0] }
sub id ($) { sprintf "M-%05d", $_[0] }
sub ids ($$) { join ',', map { id($_) } $_[0] .. $_[1] }
sub now_ms () { int(time * 1000) }

# Time::HiRes for the eval sections: they are compiled in package
# Test::Base::Filter, where time and sleep are the builtins (whole seconds)
sub now () { Time::HiRes::time() }
sub nap ($) { Time::HiRes::sleep($_[0]) }

sub pushcert ($$) {
    my ($c, $stamp) = @_;
    redis("HSET", "mdm:pushcert:$c->{topic}", "cert", $c->{pem}, "key", $c->{key_pem},
          "updated_at", $stamp);
}

# enrollments M-FROM..M-TO with tokens token(FROM)..token(TO)
sub enroll ($$;$) {
    my ($from, $to, $topic) = @_;
    redis('EVAL', q{
        for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
            redis.call('HSET', 'mdm:enr:{' .. string.format('M-%05d', i) .. '}',
                'type', 'Device', 'enabled', '1', 'topic', ARGV[3],
                'token', string.format('%064x', i),
                'push_magic', 'magic-' .. i, 'token_updated_at', ARGV[4])
        end
    }, 0, $from, $to, $topic // $TOPIC, now_ms() - 60_000);
}

sub apns_for ($) {
    my $t = token($_[0]);
    return grep { ($_->{token} // '') eq $t } apns_requests($APNS);
}

# tokens answered 200, as a hashref
sub ok_tokens (@) {
    my %t = map { $_->{token} => 1 } grep { ($_->{status} // 0) == 200 } @_;
    return \%t;
}

sub stat_apns ($) { redis("HGET", "mdm:stats:apns", $_[0]) // 0 }

sub alive ($) { kill 0, $_[0]{pid} }

# TLS handshakes the APNs stand-in refused (certificate verify failed)
sub handshake_failures () {
    open my $fh, '<', $APNS->{stderr} or return 0;
    return scalar grep { /TLS handshake failed: .*certificate verify failed/ } <$fh>;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(encode_base64 decode_json);
}

run_tests();

__DATA__
=== TEST 1: re-push: a silent enrollment with queued commands is pushed again, less and less often; a check-in resets the backoff; empty queues and disabled enrollments are left alone
--- redis_setup eval
sub {
    ::pushcert($::CERT, 1);
    ::enroll(1, 3);
    redis("RPUSH", "mdm:q:{M-00001}", "11111111-2222-3333-4444-555555555555");
    # M-00002: nothing queued; M-00003: queued but disabled
    redis("RPUSH", "mdm:q:{M-00003}", "11111111-2222-3333-4444-666666666666");
    redis("HSET", "mdm:enr:{M-00003}", "enabled", "0");
    apns_clear($::APNS);
    apns_rules($::APNS, undef);
    $::W = ::worker(repush_interval => 1);
    $::S{start} = ::now();
}
--- request
GET /v1/enrollments/M-00001
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    my $enr = "mdm:enr:{M-00001}";

    ::wait_for(sub { ::apns_for(1) >= 1 }, 5, "the first re-push, nobody calling /v1/push");
    Test::More::cmp_ok((::apns_for(1))[0]{time} - $::S{start}, '<', 3, "pushed within the first interval or two");
    Test::More::is(redis("HGET", $enr, "repushes"), 1, "repushes 1");

    ::wait_for(sub { ::apns_for(1) >= 2 }, 6, "the second re-push");
    Test::More::is(redis("HGET", $enr, "repushes"), 2, "repushes 2");

    ::wait_for(sub { ::apns_for(1) >= 3 }, 9, "the third re-push");
    my @p = ::apns_for(1);
    Test::More::is(scalar(@p), 3, "three pushes, not one a second");
    Test::More::is(redis("HGET", $enr, "repushes"), 3, "repushes 3");
    my ($g1, $g2) = ($p[1]{time} - $p[0]{time}, $p[2]{time} - $p[1]{time});
    Test::More::cmp_ok($g1, '>=', 1.9, "the interval doubled: 2 s after the first");
    Test::More::cmp_ok($g2, '>=', 3.9, "then 4 s")
        or Test::More::diag("gaps $g1 $g2");
    Test::More::cmp_ok($g2, '>', $g1, "growing");
    Test::More::note(sprintf "re-push gaps: %.2f s, %.2f s", $g1, $g2);
    Test::More::is(scalar(grep { $_->{status} == 200 && $_->{body} eq '{"mdm":"magic-1"}' } @p), 3,
                   "real pushes, answered 200");

    # the device checks in after the third push was recorded
    ::wait_for(sub { (redis("HGET", $enr, "push_result") // '') eq ($p[2]{apns_id} // '-') }, 5,
               "the third push recorded");
    redis("HSET", $enr, "last_seen", ::now_ms());
    ::wait_for(sub { ::apns_for(1) >= 4 }, 4, "a push 1 s after the check-in, not 8 s after the last push");
    my $t4 = (::apns_for(1))[3]{time};
    Test::More::cmp_ok($t4 - $p[2]{time}, '<', 3.5, "the backoff was reset");
    Test::More::is(redis("HGET", $enr, "repushes"), 1, "repushes counts again from 1");

    Test::More::is(scalar(::apns_for(2)), 0, "an empty queue is not re-pushed");
    Test::More::is(scalar(::apns_for(3)), 0, "a disabled enrollment is not re-pushed");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]
--- response_body_like: "id":"M-00001"
--- redis_check eval
[
  [ "HEXISTS mdm:enr:{M-00002} repushes", "0" ],
  [ "HEXISTS mdm:enr:{M-00003} repushes", "0" ],
  [ "HEXISTS mdm:enr:{M-00003} push_at", "0" ],
  [ "LLEN mdm:push", 0 ],
]



=== TEST 2: webhooks: the receiver always answers 500: after webhook_retries attempts the event is a dead letter, out of mdm:events
--- redis_setup eval
sub {
    $::HOOK = start_webhook(rules => { status => 500 });
    $::W = ::worker(webhook_url => $::HOOK->{hook_url}, webhook_retries => 3,
                    webhook_backoff_ms => 50);
}
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- signed_by: mac
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { redis("XLEN", "mdm:webhooks:dead") >= 1 }, 10, "a dead letter");
    ::wait_for(sub { redis("XLEN", "mdm:events") == 0 }, 5, "removed from mdm:events");
    ::nap(0.5);   # any further attempt would come within this (backoff 50, 100 ms)
    my @h = webhook_requests($::HOOK);
    Test::More::is(scalar(@h), 3, "3 attempts, no more");
    Test::More::is_deeply([ map { decode_json($_->{body})->{topic} } @h ],
                          [ ("mdm.Authenticate") x 3 ], "of the event");
    my $d = redis("XRANGE", "mdm:webhooks:dead", "-", "+");
    my %f = @{ $d->[0][1] };
    Test::More::is($f{error}, "HTTP 500", "dead letter: the last error");
    Test::More::is($f{type}, "Authenticate", "dead letter: the event's fields");
    Test::More::is($f{id}, $::UDID, "dead letter: the enrollment");
    Test::More::like($f{event_id}, qr/^\d+-\d+$/, "dead letter: the event id");
    Test::More::is(decode_json($h[0]{body})->{event_id}, $f{event_id}, "the event id the receiver saw");
    Test::More::like(worker_log($::W), qr/failed 3 times \(HTTP 500\): moved to mdm:webhooks:dead/,
                     "logged");
    $::S{dead_event} = $f{event_id};
} ]
--- redis_check eval
[
  [ "XLEN mdm:webhooks:dead", 1 ],
  [ "XLEN mdm:events", 0 ],
  [ "XPENDING mdm:events webhooks", sub { $_[0][0] == 0 } ],
]



=== TEST 3: GET /v1/webhooks shows the dead letter
--- request
GET /v1/webhooks
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    my $j = decode_json($_[1]);
    Test::More::is($j->{dead_total}, 1, "dead_total 1");
    Test::More::is($j->{backlog}, 0, "no backlog");
    Test::More::is($j->{pending}, 0, "nothing pending");
    Test::More::is(scalar @{ $j->{dead} }, 1, "one dead entry");
    my $d = $j->{dead}[0];
    Test::More::is($d->{error}, "HTTP 500", "with its error");
    Test::More::is($d->{event_id}, $::S{dead_event}, "and event id");
    Test::More::is($d->{type}, "Authenticate", "type");
    Test::More::is($d->{id}, $::UDID, "enrollment");
    Test::More::ok(!exists $d->{body}, "no body");
} ]



=== TEST 4: the next events of the same enrollment still go out, in order, once the receiver answers 200
--- redis_setup eval
sub {
    webhook_clear($::HOOK);
    # the first three requests after this get 500, then 200
    webhook_rules($::HOOK, { sequence => [ 500, 500, 500 ] });
}
--- request eval
[ checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist"),
  checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::UDID) ]
--- more_headers eval
["Content-Type: $t::MDM::CheckinType", "Content-Type: $t::MDM::CheckinType"]
--- signed_by eval
["mac", "mac"]
--- error_code eval
[200, 200]
--- after_each eval
[ undef, sub {
    my @h = webhook_wait($::HOOK, 4, 20);
    ::nap(0.3);
    @h = webhook_requests($::HOOK);
    Test::More::is_deeply([ map { decode_json($_->{body})->{topic} . " " . $_->{status} } @h ],
                          [ ("mdm.TokenUpdate 500") x 3, "mdm.CheckOut 200" ],
                          "the first event dead after 3 attempts, the next delivered after it");
    ::wait_for(sub { redis("XLEN", "mdm:webhooks:dead") == 2 }, 5, "second dead letter");
    ::wait_for(sub { redis("XLEN", "mdm:events") == 0 }, 5, "stream emptied");
    my $d = redis("XREVRANGE", "mdm:webhooks:dead", "+", "-", "COUNT", 1);
    my %f = @{ $d->[0][1] };
    Test::More::is($f{type}, "TokenUpdate", "the TokenUpdate is the new dead letter");
    Test::More::is(::stop_all(), 0, "exit 0");
    stop_server($::HOOK);
} ]



=== TEST 5: 403 BadCertificate: recorded, counted, logged, not retried
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(10, 10);
    apns_clear($::APNS);
    apns_rules($::APNS, { tokens => { ::token(10) => { status => 403, reason => 'BadCertificate' } } });
    $::W = ::worker();
}
--- request
PUT /v1/push/M-00010
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00010}", "push_error") }, 10, "push_error recorded");
    ::nap(0.6);   # retries would come after 100, 200 ms
    Test::More::is(scalar(::apns_for(10)), 1, "exactly one request: not retried");
    Test::More::like(worker_log($::W),
                     qr/error: APNs refused the push certificate for topic "\Q$::TOPIC\E": APNs 403 BadCertificate/,
                     "an error line in the worker log");
} ]
--- redis_check eval
[
  [ "HGET mdm:enr:{M-00010} push_error", "APNs 403 BadCertificate" ],
  [ "HEXISTS mdm:enr:{M-00010} push_result", "0" ],
  [ "HEXISTS mdm:enr:{M-00010} token_invalid", "0" ],
  [ "HGET mdm:stats:apns bad_certificate", 1 ],
  [ "LLEN mdm:push", 0 ],
  [ "LLEN mdm:push:proc:w1", 0 ],
]



=== TEST 6: a push certificate APNs does not trust: "TLS to APNs failed", counted, retried, and delivered once a good one is uploaded
--- redis_setup eval
sub {
    ::pushcert($::ROGUE, 1);
    ::enroll(11, 11, $::TOPIC_R);
    apns_clear($::APNS);
    apns_rules($::APNS, undef);
    $::S{hs} = ::handshake_failures();
}
--- request
PUT /v1/push/M-00011
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    # the stand-in logs each refused handshake
    ::wait_for(sub { ::handshake_failures() - $::S{hs} >= 2 }, 5, "two handshakes refused by APNs");
    Test::More::pass("retried after the TLS failure");
    ::nap(0.1);
    Test::More::cmp_ok(::stat_apns("tls_failure"), '>=', 2, "counted in mdm:stats:apns tls_failure")
        or Test::More::diag("push_error: " . (redis("HGET", "mdm:enr:{M-00011}", "push_error") // '(none)'));
    Test::More::like(worker_log($::W), qr/error: TLS to APNs failed for topic "\Q$::TOPIC_R\E"/,
                     "logged as a TLS failure");
    Test::More::is(scalar(grep { ($_->{status} // 0) == 200 } ::apns_for(11)), 0, "nothing delivered with it");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00011}", "push_result"), 0, "no result yet");

    ::pushcert($::GOOD_R, 2);
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(11) }, 15, "delivered with the new certificate");
    my ($r) = grep { ($_->{status} // 0) == 200 } ::apns_for(11);
    Test::More::like($r->{client_subject}, qr/APSP:good-0001/, "the new certificate was presented");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00011}", "push_result") }, 5, "recorded");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00011}", "push_error"), 0, "no error left");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 7: APNs answers 400 to every push: reported as a configuration error, no token marked dead
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(20, 29);
    apns_clear($::APNS);
    apns_rules($::APNS, { status => 400, reason => 'BadDeviceToken' });
    $::W = ::worker();
}
--- request eval
"PUT /v1/push/" . ::ids(20, 29)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::stat_apns("bad_request") == 10 }, 10, "10 answers counted");
    ::wait_for(sub { worker_log($::W) =~ /to the last 10 pushes/ }, 5, "the log line");
    my $log = worker_log($::W);
    Test::More::like($log, qr/error: APNs answered 400 \(BadDeviceToken\) to the last 10 pushes: .*tokens are not marked dead/,
                     "a configuration error in the worker log");
    Test::More::is(scalar(() = $log =~ /to the last 10 pushes/g), 1, "said once");
    Test::More::is(scalar(grep { redis("HEXISTS", "mdm:enr:{" . ::id($_) . "}", "token_invalid") } 20 .. 29), 0,
                   "no token_invalid");
    Test::More::is(scalar(grep { (redis("HGET", "mdm:enr:{" . ::id($_) . "}", "push_error") // '') eq "APNs 400 BadDeviceToken" } 20 .. 29),
                   10, "push_error recorded for each");
    Test::More::is(scalar(grep { ::apns_for($_) == 1 } 20 .. 29), 10, "one request each: a 400 is not retried");

    # the tokens are still pushed to
    apns_rules($::APNS, undef);
    redis("RPUSH", "mdm:push", "M-00020");
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(20) }, 10, "pushed again");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00020}", "push_result") }, 5, "recorded");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00020}", "push_error"), 0, "and fine");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 8: two workers on one Redis share 500 pushes
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(1000, 1499);
    apns_clear($::APNS);
    apns_rules($::APNS, { default => { status => 200, delay_ms => 50 } });
    ::worker(worker_id => 'wa', max_inflight => 25);
    ::worker(worker_id => 'wb', max_inflight => 25);
}
--- request eval
"PUT /v1/push/" . ::ids(1000, 1499)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    my %max = (wa => 0, wb => 0);
    my $deadline = ::now() + 20;
    while (::now() < $deadline && ($max{wa} == 0 || $max{wb} == 0)) {
        for my $w (qw(wa wb)) {
            my $n = redis("LLEN", "mdm:push:proc:$w");
            $max{$w} = $n if $n > $max{$w};
        }
        ::nap(0.005);
    }
    Test::More::cmp_ok($max{wa}, '>', 0, "worker wa took pushes (its processing list was used)");
    Test::More::cmp_ok($max{wb}, '>', 0, "worker wb took pushes (its processing list was used)");

    ::wait_for(sub { keys(%{ ::ok_tokens(apns_requests($::APNS)) }) >= 500 }, 30, "every token pushed");
    my @r = apns_requests($::APNS);
    my $ok = ::ok_tokens(@r);
    Test::More::is(scalar(grep { $ok->{::token($_)} } 1000 .. 1499), 500, "every token pushed at least once");
    my %conn = map { $_->{conn} => 1 } @r;
    Test::More::cmp_ok(scalar(keys %conn), '>=', 2, "over the two workers' connections");
    for my $i (0, 1) {
        Test::More::like(worker_log($::WS[$i]), qr/push certificate for topic "\Q$::TOPIC\E" loaded/,
                         "worker " . ($i ? "wb" : "wa") . " pushed");
    }
    ::wait_for(sub { ::stat_apns("ok") >= 500 }, 10, "all recorded");
    ::wait_for(sub { redis("LLEN", "mdm:push:proc:wa") + redis("LLEN", "mdm:push:proc:wb") == 0 }, 10,
               "processing lists emptied");
    Test::More::is_deeply([ ::stop_all() ], [ 0, 0 ], "both exit 0");
} ]
--- redis_check eval
[
  [ "LLEN mdm:push", 0 ],
  [ "LLEN mdm:push:proc:wa", 0 ],
  [ "LLEN mdm:push:proc:wb", 0 ],
  [ "HGET mdm:stats:apns ok", 500 ],
  [ "HEXISTS mdm:enr:{M-01499} push_result", 1 ],
]



=== TEST 9: SIGTERM in the middle of a burst: exit 0 soon, the pushes in flight complete and are recorded, the rest stay queued for the next worker
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(2000, 2199);
    apns_clear($::APNS);
    apns_rules($::APNS, { default => { status => 200, delay_ms => 300 } });
    $::W = ::worker(max_inflight => 50);
}
--- request eval
"PUT /v1/push/" . ::ids(2000, 2199)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    # the first push warms the connection (300 ms), then 49 more go out
    ::wait_for(sub { apns_requests($::APNS) >= 10 }, 10, "a burst in flight");
    my $t0 = ::now();
    my $st = stop_worker($::W, 10);
    @::WS = ();
    Test::More::is($st, 0, "exit status 0");
    Test::More::cmp_ok(::now() - $t0, '<', 3, "within a few seconds");
    Test::More::like(worker_log($::W), qr/signal 15: finishing \d+ pushes in flight/, "logged the stop");

    my @r = apns_requests($::APNS);
    my %sent = map { $_->{token} => 1 } @r;
    my @sent = grep { $sent{::token($_)} } 2000 .. 2199;
    Test::More::cmp_ok(scalar(@sent), '>', 0, "some were sent");
    Test::More::cmp_ok(scalar(@sent), '<', 200, "not all");
    Test::More::is(scalar(grep { ($_->{status} // 0) != 200 } @r), 0, "all answered 200");
    Test::More::is(scalar(grep { !redis("HEXISTS", "mdm:enr:{" . ::id($_) . "}", "push_result") } @sent), 0,
                   "every push in flight completed and its result is recorded");
    Test::More::is(::stat_apns("ok"), scalar(@sent), "counted");
    Test::More::is(redis("LLEN", "mdm:push:proc:w1"), 0, "nothing left in the processing list");
    my %queued = map { $_ => 1 } @{ redis("LRANGE", "mdm:push", 0, -1) };
    my @missing = grep { !$sent{::token($_)} && !$queued{::id($_)} } 2000 .. 2199;
    Test::More::is(scalar(@missing), 0, "the pushes not sent are still in mdm:push")
        or Test::More::diag("lost: @missing[0 .. ($#missing > 9 ? 9 : $#missing)]");
    Test::More::is(scalar(keys %queued), 200 - @sent, "exactly those");

    apns_rules($::APNS, undef);
    $::W = ::worker();
    ::wait_for(sub { keys(%{ ::ok_tokens(apns_requests($::APNS)) }) >= 200 }, 30, "the new worker pushes the rest");
    my $ok = ::ok_tokens(apns_requests($::APNS));
    Test::More::is(scalar(grep { $ok->{::token($_)} } 2000 .. 2199), 200, "every token pushed");
    ::wait_for(sub { redis("LLEN", "mdm:push") + redis("LLEN", "mdm:push:proc:w1") == 0 }, 10, "queues drained");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 10: two topics at once: each push is made with its own topic's certificate, one connection each
--- redis_setup eval
sub {
    ::pushcert($::CERT_B, 1);
    ::enroll(3000, 3019, $::TOPIC);
    ::enroll(3020, 3039, $::TOPIC_B);
    apns_clear($::APNS);
    apns_rules($::APNS, undef);
    $::W = ::worker();
}
--- request eval
"PUT /v1/push/" . ::ids(3000, 3039)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    my @r = apns_wait($::APNS, 40, 20);
    Test::More::is(scalar(@r), 40, "40 pushes");
    Test::More::is(scalar(grep { ($_->{status} // 0) == 200 } @r), 40, "all answered 200");
    my @bad = grep { ($_->{client_uid} // '') ne ($_->{headers}{'apns-topic'} // '-') } @r;
    Test::More::is(scalar(@bad), 0, "client certificate UID = apns-topic for every push")
        or Test::More::diag(explain($bad[0]));
    my @a = grep { $_->{headers}{'apns-topic'} eq $::TOPIC } @r;
    my @b = grep { $_->{headers}{'apns-topic'} eq $::TOPIC_B } @r;
    Test::More::is(scalar(@a), 20, "20 on topic A");
    Test::More::is(scalar(@b), 20, "20 on topic B");
    Test::More::is(scalar(grep { hex($_->{token}) >= 3020 } @a), 0, "topic A pushes are topic A's enrollments");
    Test::More::is(scalar(grep { $_->{client_subject} =~ /APSP:topic-b-0001/ } @b), 20, "with certificate B");
    my %ca = map { $_->{conn} => 1 } @a;
    my %cb = map { $_->{conn} => 1 } @b;
    Test::More::is(scalar(keys %ca) . "+" . scalar(keys %cb), "1+1", "one connection per certificate");
    Test::More::ok(!grep({ $cb{$_} } keys %ca), "not shared");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-03039}", "push_result")
                     && redis("HEXISTS", "mdm:enr:{M-03000}", "push_result") }, 10, "recorded");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 11: the re-push schedule does not depend on how many other keys Redis holds
--- redis_setup eval
sub {
    # 100,000 unrelated keys (a fleet's enrollments, results, commands...)
    redis("EVAL", "for i = 1, 100000 do redis.call('SET', 'filler:' .. i, 'x') end", 0);
    ::enroll(5000, 5000);
    redis("RPUSH", "mdm:q:{M-05000}", "11111111-2222-3333-4444-777777777777");
    redis("HSET", "mdm:enr:{M-05000}", "push_at", ::now_ms() - 10_000);   # due now
    apns_clear($::APNS);
    apns_rules($::APNS, undef);
    $::W = ::worker(repush_interval => 1);
}
--- request
GET /v1/enrollments/M-05000
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    my $ok = eval { ::wait_for(sub { ::apns_for(5000) >= 1 }, 4, "the re-push"); 1 };
    Test::More::ok($ok, "re-pushed within the interval (1 s) and a tick or two, not after a scan of the whole keyspace");
    Test::More::is(::stop_all(), 0, "exit 0");
    redis("EVAL", "for i = 1, 100000 do redis.call('DEL', 'filler:' .. i) end", 0);
} ]



=== TEST 12: Redis down when the worker starts: it keeps trying and starts working once Redis is up
--- request
GET /v1/webhooks
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    apns_clear($::APNS);
    redis_stop();
    $::W = ::worker();
    ::nap(1.5);
    Test::More::ok(::alive($::W), "still running without Redis");
    Test::More::like(worker_log($::W), qr/redis 127\.0\.0\.1:\d+ \(commands\): .*reconnecting/,
                     "logged that Redis is unavailable");
    redis_start();
    # Redis keeps nothing across a restart: the data again
    ::pushcert($::CERT, 3);
    ::enroll(4000, 4000);
    redis("RPUSH", "mdm:push", "M-04000");
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(4000) }, 15, "pushed once Redis is up");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-04000}", "push_result") }, 5, "recorded");
    Test::More::like(worker_log($::W), qr/redis 127\.0\.0\.1:\d+ \(commands\) is back/, "logged that it is back");
    Test::More::is(redis("LLEN", "mdm:push:proc:w1"), 0, "processing list empty");
    Test::More::ok(redis("EXISTS", "mdm:worker:w1"), "heartbeat written");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]
