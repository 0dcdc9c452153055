# mdm_metrics: mdm-worker's counters labelled by worker id, checked against
# the pushes and webhook events this test made two workers handle, in a
# format promtool accepts; a worker gone for longer than stats_retention
# leaves nothing behind.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use MIME::Base64 qw(encode_base64);
use File::Temp qw(tempfile);

no_shuffle();

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $CERT = make_push_cert();
our $TOPIC = $CERT->{topic};
our $APNS = start_apns();
our $HOOK = start_webhook();
our ($WA, $WB, $WC);

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        location = /metrics { mdm_metrics; }
        location /v1/ { mdm_api; mdm_api_key $KEY; }
    },
);

sub token ($) { sprintf "%064x", $_[0] }

sub worker ($%) {
    my ($id, %o) = @_;
    return start_worker(apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                        push_backoff_ms => 100, push_retries => 2,
                        repush_interval => 0, worker_id => $id, %o);
}

# enrollments W-0001.. written straight to Redis: the worker reads them
sub enroll ($$) {
    my ($from, $to) = @_;
    redis('EVAL', q{
        for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
            local id = string.format('W-%04d', i)
            redis.call('HSET', 'mdm:enr:{' .. id .. '}', 'type', 'Device',
                'enabled', '1', 'topic', ARGV[3],
                'token', string.format('%064x', i),
                'push_magic', 'magic-' .. i, 'token_updated_at', ARGV[4])
        end
    }, 0, $from, $to, $TOPIC, int(time * 1000) - 60_000);
}

sub ids ($$) { join ',', map { sprintf "W-%04d", $_ } $_[0] .. $_[1] }

sub recorded ($$) {
    my ($from, $to) = @_;
    for my $i ($from .. $to) {
        my $k = sprintf "mdm:enr:{W-%04d}", $i;
        return 0 unless redis('HEXISTS', $k, 'push_at');
    }
    return 1;
}

sub event ($) {
    redis('XADD', 'mdm:events', '*', 'type', 'Connect', 'id', $_[0],
          'enrollment_type', 'Device', 'device_id', $_[0], 'time',
          int(time * 1000), 'params', '', 'status', 'Acknowledged',
          'command_uuid', "$_[0]/1", 'body', '<plist/>');
}

sub metric ($$) {
    my ($body, $sample) = @_;
    return $body =~ /^\Q$sample\E (\S+)$/m ? $1 : undef;
}

sub sum ($$) {
    my ($body, $re) = @_;
    my $s = 0;
    $s += $1 while $body =~ /^$re (\S+)$/mg;
    return $s;
}

sub promtool_ok ($) {
    my ($body) = @_;
    my ($fh, $file) = tempfile();
    print $fh $body;
    close $fh;
    my $out = `promtool check metrics < $file 2>&1`;
    Test::More::is($?, 0, 'promtool check metrics accepts it') or Test::More::diag($out);
}

run_tests();

__DATA__

=== TEST 1: the push certificate
--- request eval
"PUT /v1/pushcert\n$::CERT->{pem}$::CERT->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 200



=== TEST 2: worker "a" pushes 20 (two tokens dead, one APNs 500 until it gives up) and delivers webhooks (one 500, one dead letter)
--- redis_setup eval
sub {
    ::enroll(1, 20);
    apns_rules($::APNS, { tokens => { ::token(3) => { status => 410 }, ::token(4) => { status => 410 },
                                      ::token(5) => { status => 500 } } });
    webhook_rules($::HOOK, { sequence => [ 500 ] });
    ::event("E-$_") for 1 .. 3;
    $::WA = ::worker('a', webhook_url => $::HOOK->{url} . '/hook', webhook_retries => 2,
                     webhook_backoff_ms => 100);
}
--- request eval
"PUT /v1/push/" . ::ids(1, 20)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::recorded(1, 20) }, 20, "20 push results recorded");
    ::wait_for(sub { scalar(grep { ($_->{status} // 0) == 200 } webhook_requests($::HOOK)) >= 3 }, 20,
               "3 events delivered");
    webhook_rules($::HOOK, { status => 500 });
    ::event("E-4");
    ::wait_for(sub { redis('XLEN', 'mdm:webhooks:dead') == 1 }, 20, "one dead letter");
    Test::More::is(stop_worker($::WA), 0, "worker a stops cleanly");
} ]



=== TEST 3: worker "b" pushes 20 more
--- redis_setup eval
sub {
    ::enroll(21, 40);
    apns_rules($::APNS, {});
    $::WB = ::worker('b');
}
--- request eval
"PUT /v1/push/" . ::ids(21, 40)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::recorded(21, 40) }, 20, "20 push results recorded");
} ]



=== TEST 4: two label sets whose sums are the pushes sent; every counter as the traffic was
--- request
GET /metrics
--- error_code: 200
--- after_each eval
[ sub {
    my ($block, $b) = @_;
    ::promtool_ok($b);
    my $p = 'ngx_mdm_worker_apns_pushes_total';
    Test::More::is(::metric($b, $p . q{{worker="a",result="ok"}}), 17, 'a: 17 pushed');
    Test::More::is(::metric($b, $p . q{{worker="a",result="unregistered"}}), 2, 'a: 2 answered 410');
    Test::More::is(::metric($b, $p . q{{worker="a",result="gave_up"}}), 1, 'a: 1 given up');
    Test::More::is(::metric($b, $p . q{{worker="b",result="ok"}}), 20, 'b: 20 pushed');
    Test::More::is(::sum($b, qr/\Q$p\E\{worker="a",[^}]*\}/), 20, 'a: the sum is what it pushed');
    Test::More::is(::sum($b, qr/\Q$p\E\{[^}]*\}/), 40, 'both: the sum is the 40 pushes sent');
    Test::More::is(::sum($b, qr/ngx_mdm_apns_pushes_total\{[^}]*\}/), 40, 'the fleet-wide total agrees');
    Test::More::is(::metric($b, 'ngx_mdm_worker_apns_dead_tokens_total{worker="a"}'), 2, 'a: 2 tokens marked dead');
    Test::More::is(::metric($b, 'ngx_mdm_worker_apns_dead_tokens_total{worker="b"}'), 0, 'b: none');
    Test::More::is(::metric($b, 'ngx_mdm_worker_apns_retries_total{worker="a"}'), 2, 'a: 2 retries (push_retries 2)');
    Test::More::is(::metric($b, 'ngx_mdm_worker_apns_retries_total{worker="b"}'), 0, 'b: none');
    Test::More::is(::metric($b, 'ngx_mdm_worker_webhook_deliveries_total{worker="a"}'), 3, 'a: 3 delivered');
    Test::More::is(::metric($b, 'ngx_mdm_worker_webhook_failures_total{worker="a"}'), 3,
                   'a: 3 failed requests (one 500, then two for the dead letter)');
    Test::More::is(::metric($b, 'ngx_mdm_worker_webhook_dead_letters_total{worker="a"}'), 1, 'a: 1 dead letter');
    Test::More::is(::metric($b, 'ngx_mdm_webhook_dead_letters'), 1, 'the dead-letter stream agrees');
    Test::More::is(::metric($b, 'ngx_mdm_worker_webhook_deliveries_total{worker="b"}'), 0, 'b: no webhooks');
    my $ttl = redis('PTTL', 'mdm:stats:worker:a');
    Test::More::ok($ttl > 80_000_000 && $ttl <= 86_400_000, "a's counters expire (stats_retention, a day): $ttl ms");
    Test::More::is(redis('ZCARD', 'mdm:stats:workers'), 2, 'two workers listed');
    Test::More::is(stop_worker($::WB), 0, "worker b stops cleanly");
} ]



=== TEST 5: a worker gone for longer than stats_retention leaves no key and no series
--- redis_setup eval
sub {
    ::enroll(41, 41);
    $::WC = ::worker('c', stats_retention => 1);   # at least 3 heartbeats: 3 s
}
--- request eval
"PUT /v1/push/" . ::ids(41, 41)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::recorded(41, 41) }, 20, "the push recorded");
    Test::More::is(redis('HGET', 'mdm:stats:worker:c', 'push_ok'), 1, 'c counted its push');
    my $ttl = redis('PTTL', 'mdm:stats:worker:c');
    Test::More::ok($ttl > 0 && $ttl <= 3000, "c's counters expire within 3 s: $ttl ms");
    Test::More::is(stop_worker($::WC), 0, "worker c stops");
    ::wait_for(sub { !redis('EXISTS', 'mdm:stats:worker:c') }, 10, "c's counters expired");
    Test::More::ok(defined redis('ZSCORE', 'mdm:stats:workers', 'c'), 'c still listed: nobody beat since');
    # a live worker's heartbeat drops c from the list
    $::WA = ::worker('a');
    ::wait_for(sub { !defined redis('ZSCORE', 'mdm:stats:workers', 'c') }, 10, "c dropped from the list");
    Test::More::ok(redis('EXISTS', 'mdm:stats:worker:b'), "b's counters live on (a day)");
} ]



=== TEST 6: no series of worker c any more; a and b still there
--- request
GET /metrics
--- error_code: 200
--- response_body_unlike
worker="c"
--- response_body_like
ngx_mdm_worker_apns_pushes_total\{worker="a",result="ok"\} 17
--- after_each eval
[ sub { Test::More::is(stop_worker($::WA), 0, "worker a stops cleanly") } ]
