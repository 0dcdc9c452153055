# mdm_redis wait=N[,TIME]: a device's 200 means N replicas have the write.
# Fewer within TIME: 503 (the device sends again; the scripts are safe to
# run twice). The harness's Redis is the master; a replica of ours joins it.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

no_shuffle();
worker_connections(1024);

our $UDID = 'WAIT-TEST-0001';
our ($ReplicaPid, $ReplicaPort);
our $Dir = File::Temp::tempdir('mdm-wait-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{MDM_TEST_KEEP});

sub replica_get (@) {
    my $r = eval { t::MDM::_roundtrip(t::MDM::_connect($ReplicaPort), @_) };
    return $@ ? undef : $r;
}

sub start_replica () {
    $ReplicaPort = do {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Listen => 1, ReuseAddr => 1) or die $!;
        my $p = $s->sockport; close $s; $p;
    };
    $ReplicaPid = t::MDM::_spawn(
        [ 'redis-server', '--port', $ReplicaPort, '--bind', '127.0.0.1', '--save', '',
          '--appendonly', 'no', '--dir', $Dir,
          '--replicaof', '127.0.0.1', $ENV{TEST_NGINX_REDIS_PORT} ],
        "$Dir/replica.out", "$Dir/replica.log", 1);
    # in sync, and acknowledging: a WAIT of our own is answered by it
    my $deadline = time + 15;
    while (time < $deadline) {
        return if (replica_get('INFO', 'replication') // '') =~ /master_link_status:up/
                  && redis('WAIT', 1, 200) >= 1;
        sleep 0.1;
    }
    die "the replica did not sync within 15 s\n";
}

END { kill 'KILL', $ReplicaPid if $ReplicaPid }

add_block_preprocessor(sub {
    my ($block) = @_;
    if (my $message = $block->can('checkin') && $block->checkin) {
        $message =~ s/\s+\z//;
        $block->set_value(request => checkin_request("nanomdm/mdm/testdata/$message.2.plist",
                                                     UDID => $UDID));
        $block->set_value(signed_by => 'dev');
        $block->set_value(more_headers => "Content-Type: $t::MDM::CheckinType");
    }
});

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=3s wait=1,800ms;
    },
    config => q{
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        }
    },
);

run_tests();

__DATA__

=== TEST 1: no replica: 503 after the WAIT time, one line saying so; the master has the write
--- checkin: Authenticate
--- error_code: 503
--- redis_check eval
[ [ "HGET mdm:enr:{WAIT-TEST-0001} type", "Device" ] ]
--- error_log eval
qr/answered 503: redis was acknowledged by 0 of 1 replicas within 800 ms \(wait=\)/



=== TEST 2: a replica in sync: 200, and the replica has the write when the device gets it
--- redis_setup eval
sub { ::start_replica() }
--- checkin: Authenticate
--- error_code: 200
--- redis_check eval
[ [ "PING", sub { (::replica_get('HGET', 'mdm:enr:{WAIT-TEST-0001}', 'authenticated_at') // '') ne '' } ] ]
--- no_error_log
[error]



=== TEST 3: scripts flushed: EVAL after NOSCRIPT, and the WAIT behind it is the one that counts
--- redis_setup
SCRIPT FLUSH
--- checkin: TokenUpdate
--- error_code: 200
--- redis_check eval
[ [ "PING", sub { (::replica_get('HGET', 'mdm:enr:{WAIT-TEST-0001}', 'token_update_tally') // '') eq '1' } ] ]
--- no_error_log
[error]



=== TEST 4: the replica hangs (SIGSTOP): 503 within the WAIT time, not the call timeout
--- redis_setup eval
sub { kill 'STOP', $::ReplicaPid }
--- checkin: TokenUpdate
--- error_code: 503
--- after_each eval
[ sub { kill 'CONT', $::ReplicaPid } ]
--- error_log eval
qr/redis was acknowledged by 0 of 1 replicas within 800 ms/



=== TEST 5: and 200 again once it answers
--- checkin: TokenUpdate
--- error_code: 200
--- no_error_log
[error]



=== TEST 6: a burst of 100 devices: all 200, and fewer WAITs than calls (one WAIT covers every reply before it)
--- redis_setup eval
sub { redis('CONFIG', 'RESETSTAT') }
--- checkin: TokenUpdate
--- error_code: 200
--- after_each eval
[ sub {
    my $reqs = [ map {
        my $b = plist_set(vector("nanomdm/mdm/testdata/Authenticate.2.plist"), UDID => "WAIT-BURST-$_");
        $b =~ s/^\s+|\s+\z//g;
        http_request(PUT => '/mdm/checkin', $b,
                     [ 'Content-Type' => $t::MDM::CheckinType,
                       'Mdm-Signature' => mdm_signature($b, device_cert("wb$_", shared_key => 1)) ]);
    } 1 .. 100 ];
    my $res = concurrent_requests($ENV{TEST_NGINX_SERVER_PORT}, $reqs, timeout => 30);
    Test::More::is(scalar(grep { ($_->{status} // 0) == 200 } @$res), 100, 'all 100 answered 200');
    my $stats = redis('INFO', 'commandstats');
    my ($evals) = $stats =~ /cmdstat_evalsha:calls=(\d+)/;
    my ($waits) = $stats =~ /cmdstat_wait:calls=(\d+)/;
    Test::More::cmp_ok($waits, '<', $evals, "WAITs ($waits) fewer than calls ($evals)");
} ]
--- no_error_log
[error]



=== TEST 6: a WAIT time not shorter than the call timeout fails nginx -t
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=500ms wait=1,500ms;
--- config
--- must_die
--- error_log
the WAIT time of "wait=" must be shorter than "timeout="
