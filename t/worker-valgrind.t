# mdm-worker under valgrind: pushes (200, 410, retried 500s), a certificate
# reload, webhooks with a receiver that is down then up, a Redis outage,
# then SIGTERM; and SIGTERM with a push still in flight after stop_timeout.
# valgrind must report no error and no leak.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;

no_shuffle();

our $CERT = make_push_cert();
our $TOPIC = $CERT->{topic};
our $APNS = start_apns(max_streams => 1000);
our $HOOK = start_webhook(rules => { sequence => [500, 500] });
our $N = 50;
our $W;

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

# Every block is started by the Mac's Authenticate (it only carries the
# test), with room for valgrind's start-up
add_block_preprocessor(sub {
    my ($block) = @_;
    return if $block->can('request') && defined $block->request;
    $block->set_value(request => checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist"));
    $block->set_value(signed_by => 'mac');
    $block->set_value(timeout => 10);
});

sub token ($) { sprintf '%064x', $_[0] }

# mdm-worker under valgrind, talking to the APNs stand-in, no re-push
sub vg_worker (%) {
    return start_worker(apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                        repush_interval => 0, valgrind => 1, @_);
}

sub setup () {
    redis('HSET', "mdm:pushcert:$TOPIC", 'cert', $CERT->{pem},
          'key', $CERT->{key_pem}, 'updated_at', 1);
    for my $i (1 .. $N) {
        redis('HSET', sprintf('mdm:enr:{V-%04d}', $i), 'type', 'Device',
              'enabled', '1', 'topic', $TOPIC, 'token', token($i),
              'push_magic', "m$i", 'token_updated_at', 1);
        redis('RPUSH', 'mdm:push', sprintf('V-%04d', $i));
    }
}

run_tests();

__DATA__

=== TEST 1: pushes and webhooks under valgrind
--- redis_setup eval
sub {
    ::setup();
    apns_rules($::APNS, { tokens => { ::token(1) => { status => 410 },
                                      ::token(2) => { status => 500 } } });
    $::W = ::vg_worker(push_backoff_ms => 200, worker_id => 'vg',
                       webhook_url => $::HOOK->{hook_url}, webhook_hmac_key => 'k',
                       webhook_backoff_ms => 200);
}
--- error_code: 200
--- after_each eval
[ sub {
    wait_for(sub { my %t = map { $_->{token} => 1 } apns_requests($::APNS); keys(%t) >= $::N }, 120,
             "every token pushed under valgrind");
    apns_rules($::APNS, undef);
    wait_for(sub { grep { $_->{token} eq ::token(2) && $_->{status} == 200 } apns_requests($::APNS) },
             60, "the 500 retried until it succeeded");
    # a certificate reload
    redis('HSET', "mdm:pushcert:$::TOPIC", 'updated_at', 2);
    redis('RPUSH', 'mdm:push', 'V-0003');
    wait_for(sub { (grep { $_->{token} eq ::token(3) } apns_requests($::APNS)) >= 2 }, 60,
             "pushed with the reloaded certificate");
    # the webhook receiver answered 500 twice, then 200
    my @h = webhook_wait($::HOOK, 3, 60);
    Test::More::is($h[-1]{status}, 200, "webhook delivered after two failures");
    # a Redis outage
    redis_stop(); select(undef, undef, undef, 1); redis_start(); ::setup();
    wait_for(sub { (grep { $_->{token} eq ::token(9) } apns_requests($::APNS)) >= 2 }, 60,
             "pushes again after Redis came back");
    Test::More::is(stop_worker($::W), 0, "SIGTERM: exit status 0");
    valgrind_clean($::W, "mdm-worker");
} ]



=== TEST 2: SIGTERM with a push still in flight after stop_timeout: the worker exits anyway, freeing the jobs before the certificates they point at (issue 9 #16)
--- redis_setup eval
sub {
    ::setup();
    redis('DEL', 'mdm:push');
    apns_clear($::APNS);
    apns_rules($::APNS, { tokens => { ::token(7) => { status => 200, delay_ms => 20_000 } } });
    $::W = ::vg_worker(worker_id => 'vg2', stop_timeout => 1);
}
--- error_code: 200
--- after_each eval
[ sub {
    redis('RPUSH', 'mdm:push', 'V-0007');
    wait_for(sub { grep { $_->{token} eq ::token(7) } apns_requests($::APNS) }, 60,
             "the push is out (APNs holds it for 20 s)");
    Test::More::is(stop_worker($::W), 0, "SIGTERM: exit status 0 after stop_timeout");
    Test::More::like(worker_log($::W), qr/stop_timeout: exiting with 1 requests in flight/,
                     "said why it did not wait");
    valgrind_clean($::W, "mdm-worker exiting with a push in flight");
    Test::More::is_deeply(redis('LRANGE', 'mdm:push:proc:vg2', 0, -1), ['V-0007'],
                   "the unfinished push stays in the processing list for the next start");
    apns_rules($::APNS, undef);
} ]
