# mdm-worker against a real HTTP/2-over-TLS APNs stand-in and a real
# webhook receiver: pushes, certificates, failures, kills, Redis restarts,
# durable webhooks.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256_base64);
use JSON::PP qw(decode_json);

no_shuffle();

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $CERT = make_push_cert();
our $TOPIC = $CERT->{topic};
our $CERT2 = make_push_cert(topic => $TOPIC, uuid => 'renewed-0001');
our $APNS = start_apns(max_streams => 1000);   # as APNs allows
our ($W, $HOOK);
our $N = 1000;

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
    return start_worker(apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                        push_backoff_ms => 100, repush_interval => 0,
                        worker_id => 'w1', @_);
}

sub token ($) { sprintf "%064x", $_[0] }

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

sub apns_for ($) {
    my $t = token($_[0]);
    return grep { ($_->{token} // '') eq $t } apns_requests($APNS);
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(encode_base64 decode_base64 hmac_sha256_base64 decode_json);
}

run_tests();

__DATA__

=== TEST 1: the push certificate is uploaded through the API
--- request eval
"PUT /v1/pushcert\n$::CERT->{pem}$::CERT->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 200
--- response_body_like eval
qr/"topic":"\Q$::TOPIC\E"/
--- redis_check eval
[ [ "HEXISTS mdm:pushcert:$::TOPIC cert", "1" ] ]



=== TEST 2: 1,000 pushes arrive with the right path, headers and payload, over one connection
--- redis_setup eval
sub { ::enroll(1, $::N); redis("SADD", "mdm:topics", $::TOPIC) }
--- request eval
"PUT /v1/push/" . ::ids(1, $::N)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    $::W = ::worker();
    my @r = apns_wait($::APNS, $::N, 60);
    my %tok = map { $_->{token} => $_ } @r;
    Test::More::is(scalar keys %tok, $::N, "every token pushed");
    Test::More::note(sprintf "%d pushes received by APNs within %.3f s", scalar @r,
                             $r[-1]{time} - $r[0]{time});
    Test::More::is(scalar(grep { $_->{status} == 200 } @r), $::N, "all answered 200");
    my %conn = map { $_->{conn} => 1 } @r;
    Test::More::is(scalar keys %conn, 1, "over one HTTP/2 connection");
    my @bad = grep {
        my $i = hex $_->{token};
        $_->{path} ne "/3/device/$_->{token}"
        || $_->{headers}{'apns-push-type'} ne 'mdm'
        || $_->{headers}{'apns-topic'} ne $::TOPIC
        || $_->{headers}{'apns-priority'} ne '10'
        || $_->{headers}{'apns-expiration'} < time
        || $_->{body} ne qq({"mdm":"magic-$i"})
        || $_->{client_uid} ne $::TOPIC
    } @r;
    Test::More::is(scalar @bad, 0, "path, headers, body and certificate right")
        or Test::More::diag(explain($bad[0]));
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{W-$::N}", "push_result") }, 10,
               "results recorded");
} ]
--- redis_check eval
[
  [ "LLEN mdm:push", 0 ],
  [ "LLEN mdm:push:proc:w1", 0 ],
  [ "HGET mdm:enr:{W-0001} push_result", qr/^[0-9A-Fa-f-]{36}$/ ],
  [ "HGET mdm:stats:apns ok", $::N ],
]



=== TEST 3: 410 Unregistered marks the pushed token dead only if the enrollment still has it: tokens are compared, not clocks (issue 9 #8)
W-0001 keeps its token: dead.  W-0002's TokenUpdate (a new token) lands
while the 410 for its old token is on its way, and APNs' timestamp is later
than the TokenUpdate by the clocks: the new token stays live.
--- redis_setup eval
sub {
    apns_clear($::APNS);
    apns_rules($::APNS, { tokens => {
        ::token(1) => { status => 410, timestamp => int(time * 1000) },
        ::token(2) => { status => 410, timestamp => int(time * 1000) + 3_600_000,
                        delay_ms => 1500 },
    } });
}
--- request eval
"PUT /v1/push/W-0001,W-0002"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{W-0001}", "push_error") }, 10, "W-0001 recorded");
    # the TokenUpdate, as checkin.lua writes it, while the 410 is delayed
    redis("HSET", "mdm:enr:{W-0002}", "token", "ab" x 32, "token_updated_at", int(time * 1000));
    redis("HDEL", "mdm:enr:{W-0002}", "token_invalid");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{W-0002}", "push_error") }, 10, "W-0002 recorded");
    Test::More::is(redis("HGET", "mdm:enr:{W-0002}", "push_error"), "APNs 410 Unregistered",
                   "the 410 for the old token is recorded");
    Test::More::is(redis("HEXISTS", "mdm:enr:{W-0002}", "token_invalid"), 0,
                   "the new token is not marked dead");
    # back to the token the later tests expect
    redis("HSET", "mdm:enr:{W-0002}", "token", ::token(2));
} ]
--- redis_check eval
[
  [ "HEXISTS mdm:enr:{W-0001} token_invalid", "1" ],
  [ "HGET mdm:enr:{W-0001} push_error", "APNs 410 Unregistered" ],
]



=== TEST 4: no more pushes to a dead token until a TokenUpdate
--- redis_setup eval
sub { apns_clear($::APNS); apns_rules($::APNS, undef) }
--- request eval
"PUT /v1/push/W-0001"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub { ::wait_for(sub { (redis("HGET", "mdm:enr:{W-0001}", "push_error") // '') =~ /waiting for a TokenUpdate/ }, 10, "skipped");
        Test::More::is(scalar(::apns_for(1)), 0, "nothing sent to the dead token") } ]



=== TEST 5: a renewed certificate for the same topic is used without restarting the worker
--- redis_setup eval
sub { apns_clear($::APNS) }
--- request eval
"PUT /v1/pushcert\n$::CERT2->{pem}$::CERT2->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    Test::More::is(redis("LLEN", "mdm:push"), 0, "idle before");
    redis("RPUSH", "mdm:push", "W-0003");
    my @r = apns_wait($::APNS, 1, 20);
    Test::More::like($r[-1]{client_subject}, qr/renewed-0001/, "the new certificate was presented");
    Test::More::is($r[-1]{status}, 200, "and accepted");
} ]



=== TEST 6: a certificate for another topic is refused: enrolled devices listen on this one
--- request eval
my $c = make_push_cert(); "PUT /v1/pushcert\n$c->{pem}$c->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 409
--- response_body_like eval
qr/renew the existing push certificate/



=== TEST 7: unless forced
--- request eval
my $c = make_push_cert(); "PUT /v1/pushcert?force=1\n$c->{pem}$c->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 200



=== TEST 8: 500 and 429 are retried with backoff until APNs answers
--- redis_setup eval
sub { apns_clear($::APNS); apns_rules($::APNS, { tokens => { ::token(4) => { status => 500 }, ::token(5) => { status => 429 } } }) }
--- request eval
"PUT /v1/push/W-0004,W-0005"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::apns_for(4) >= 2 && ::apns_for(5) >= 2 }, 20, "retries");
    apns_rules($::APNS, undef);
    ::wait_for(sub { (grep { $_->{status} == 200 } ::apns_for(4), ::apns_for(5)) == 2 }, 20, "success after retries");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{W-0005}", "push_result") }, 10, "recorded");
} ]
--- redis_check eval
[ [ "HEXISTS mdm:enr:{W-0004} push_error", "0" ], [ "LLEN mdm:push:proc:w1", 0 ] ]



=== TEST 9: SIGKILL in the middle of a 1,000-push burst loses nothing: the restarted worker delivers every push
--- redis_setup eval
sub { apns_clear($::APNS); apns_rules($::APNS, { default => { status => 200, delay_ms => 20 } }) }
--- request eval
"PUT /v1/push/" . ::ids(1, $::N)
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { apns_requests($::APNS) >= 100 }, 20, "the burst under way");
    kill_worker($::W);
    Test::More::cmp_ok(redis("LLEN", "mdm:push") + redis("LLEN", "mdm:push:proc:w1"), '>', 0,
                       "unfinished pushes left in Redis");
    apns_rules($::APNS, undef);
    $::W = ::worker();
    ::wait_for(sub { my %t = map { $_->{token} => 1 } grep { $_->{status} && $_->{status} == 200 } apns_requests($::APNS);
                     keys(%t) >= $::N - 1 }, 60, "every push delivered at least once");
    ::wait_for(sub { redis("LLEN", "mdm:push") == 0 && redis("LLEN", "mdm:push:proc:w1") == 0 }, 20, "queues drained");
    my %t = map { $_->{token} => 1 } grep { $_->{status} && $_->{status} == 200 } apns_requests($::APNS);
    delete $t{ ::token(1) };   # the dead token of TEST 3 is rightly skipped
    Test::More::is(scalar keys %t, $::N - 1, "all live tokens reached");
} ]



=== TEST 10: Redis restarted under the worker: it reconnects and carries on
--- redis_setup eval
sub { apns_clear($::APNS); redis_stop(); select(undef, undef, undef, 1.5); redis_start();
      ::enroll(7, 7);
      redis("HSET", "mdm:pushcert:$::TOPIC", "cert", $::CERT2->{pem}, "key", $::CERT2->{key_pem}, "updated_at", time);
      redis("RPUSH", "mdm:push", "W-0007") }
--- request eval
"GET /v1/push/W-0007"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub { ::wait_for(sub { grep { $_->{status} && $_->{status} == 200 } ::apns_for(7) }, 30, "pushed after the restart");
        Test::More::pass("delivered after Redis came back") } ]



=== TEST 11: SIGTERM finishes the work in flight and exits 0
--- request eval
"GET /v1/push/W-0007"
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub { Test::More::is(stop_worker($::W), 0, "exit status 0");
        Test::More::like(worker_log($::W), qr/stopped/, "logged its exit") } ]



=== TEST 12: webhooks: every check-in POSTed as NanoMDM JSON with an HMAC, in order
--- redis_setup eval
sub { $::HOOK = start_webhook(); $::W = ::worker(webhook_url => $::HOOK->{hook_url}, webhook_hmac_key => 'hk',
                                                 webhook_backoff_ms => 100) }
--- request eval
[ checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist"),
  checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist") ]
--- more_headers eval
["Content-Type: $t::MDM::CheckinType", "Content-Type: $t::MDM::CheckinType"]
--- signed_by eval
["mac", "mac"]
--- error_code eval
[200, 200]
--- after_each eval
[ undef, sub {
    my @h = webhook_wait($::HOOK, 2, 20);
    my @j = map { decode_json($_->{body}) } @h;
    Test::More::is_deeply([ map { $_->{topic} } @j ], [ "mdm.Authenticate", "mdm.TokenUpdate" ], "topics, in order");
    Test::More::is($h[0]{headers}{'x-hmac-signature'}, hmac_sha256_base64($h[0]{body}, 'hk') . '=', "HMAC");
    Test::More::is(decode_base64($j[0]{checkin_event}{raw_payload}),
                   vector("nanomdm/mdm/testdata/Authenticate.2.plist") =~ s/\s+\z//r, "raw payload");
    Test::More::is($j[1]{checkin_event}{token_update_tally}, 1, "tally");
    Test::More::is($j[0]{checkin_event}{udid}, "66ADE930-5FDF-5EC4-8429-15640684C489", "udid");
    Test::More::is($j[0]{checkin_event}{ids}{type}, "Device", "ids");
} ]



=== TEST 13: the receiver down, then up: nothing lost, still in order
--- redis_setup eval
sub { stop_server($::HOOK) }
--- request eval
[ checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist"),
  checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => "66ADE930-5FDF-5EC4-8429-15640684C489") ]
--- more_headers eval
["Content-Type: $t::MDM::CheckinType", "Content-Type: $t::MDM::CheckinType"]
--- signed_by eval
["mac", "mac"]
--- error_code eval
[200, 200]
--- after_each eval
[ undef, sub {
    select(undef, undef, undef, 1);
    Test::More::cmp_ok(redis("XLEN", "mdm:events"), '>=', 2, "kept in Redis while the receiver is down");
    $::HOOK = start_webhook(port => $::HOOK->{port});
    my @j = map { decode_json($_->{body}) } webhook_wait($::HOOK, 2, 30);
    Test::More::is_deeply([ map { $_->{topic} } @j ], [ "mdm.TokenUpdate", "mdm.CheckOut" ], "delivered in order");
    ::wait_for(sub { redis("XLEN", "mdm:events") == 0 }, 10, "delivered events removed");
    Test::More::is(stop_worker($::W), 0, "clean exit");
} ]
