# Redis Sentinel: nginx and mdm-worker find the master through three
# sentinels, follow a failover (the master SIGKILLed) and a switch back
# (SENTINEL FAILOVER: the old master is demoted, writes get READONLY),
# without a restart, without answering anything but 200 or 503, and without
# losing what was acknowledged before the fault.
#
# A master, a replica and three sentinels of our own, all on 127.0.0.1; the
# harness's Redis is not used.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMWorker;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

no_shuffle();

our $Dir = File::Temp::tempdir('mdm-sentinel-XXXXXX', TMPDIR => 1,
                               CLEANUP => !$ENV{MDM_TEST_KEEP});
our $Master = 'mdmtest';
our (%Port, %Pid);

sub free_port () {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}

# one command to the server on $port: the reply, or undef when it fails
sub rq ($@) {
    my ($port, @cmd) = @_;
    my $r = eval { t::MDM::_roundtrip(t::MDM::_connect($port), @cmd) };
    return undef if $@ || t::MDM::_is_error($r);
    return $r;
}

sub wait_until ($$&) {
    my ($secs, $what, $cond) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.1;
    }
    die "timed out after $secs s waiting for $what\n";
}

sub start_redis ($@) {
    my ($name, @args) = @_;
    $Port{$name} //= free_port();
    $Pid{$name} = t::MDM::_spawn(
        [ 'redis-server', '--port', $Port{$name}, '--bind', '127.0.0.1',
          '--save', '', '--appendonly', 'no', '--dir', $Dir, @args ],
        "$Dir/$name.out", "$Dir/$name.log", 1);
    wait_until 10, "$name up", sub { defined rq($Port{$name}, 'PING') };
}

sub start_sentinel ($) {
    my ($name) = @_;
    $Port{$name} = free_port();
    my $conf = "$Dir/$name.conf";
    open my $fh, '>', $conf or die $!;
    print $fh <<"CONF";
port $Port{$name}
bind 127.0.0.1
dir $Dir
sentinel monitor $Master 127.0.0.1 $Port{a} 2
sentinel down-after-milliseconds $Master 1000
sentinel failover-timeout $Master 6000
sentinel parallel-syncs $Master 1
CONF
    close $fh;
    $Pid{$name} = t::MDM::_spawn([ 'redis-server', $conf, '--sentinel' ],
                                 "$Dir/$name.out", "$Dir/$name.log", 1);
    wait_until 10, "$name up", sub { defined rq($Port{$name}, 'PING') };
}

sub master_port () {
    my $r = rq($Port{s1}, 'SENTINEL', 'get-master-addr-by-name', $Master);
    return ref $r ? $r->[1] : 0;
}

END { kill 'KILL', values %Pid if %Pid }

start_redis('a');
start_redis('b', '--replicaof', '127.0.0.1', $Port{a});
wait_until 15, 'the replica in sync', sub {
    (rq($Port{b}, 'INFO', 'replication') // '') =~ /master_link_status:up/
};
start_sentinel($_) for qw(s1 s2 s3);
# a failover needs the sentinels to know each other and the replica
wait_until 30, 'the sentinels to find each other and the replica', sub {
    for my $s (qw(s1 s2 s3)) {
        my $peers = rq($Port{$s}, 'SENTINEL', 'sentinels', $Master);
        my $reps = rq($Port{$s}, 'SENTINEL', 'replicas', $Master);
        return 0 unless ref $peers && @$peers == 2 && ref $reps && @$reps == 1;
    }
    1;
};

$ENV{TEST_NGINX_SENTINELS} = join ',', map { "127.0.0.1:$Port{$_}" } qw(s1 s2 s3);
$ENV{TEST_NGINX_SENT_PORT} = free_port();

our $Body = do {
    my $b = plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'), UDID => 'SENT-1');
    $b =~ s/^\s+|\s+\z//g;
    $b;
};
our $Sig = mdm_signature($Body, device_cert('sent'));

sub checkin ($) {
    my ($vector) = @_;
    my $b = plist_set(vector("nanomdm/mdm/testdata/$vector.2.plist"), UDID => 'SENT-1');
    $b =~ s/^\s+|\s+\z//g;
    my $res = concurrent_requests($ENV{TEST_NGINX_SENT_PORT}, [
        http_request(PUT => '/mdm/checkin', $b,
                     [ 'Content-Type' => $t::MDM::CheckinType,
                       'Mdm-Signature' => mdm_signature($b, device_cert('sent')) ]) ],
        timeout => 5);
    return $res->[0]{status} // 0;
}

# TokenUpdates every 50 ms until one is answered 200: the answers seen
sub until_200 ($) {
    my ($secs) = @_;
    my %seen;
    my $t0 = time;
    while (time < $t0 + $secs) {
        my $s = checkin('TokenUpdate');
        $seen{$s}++;
        return (\%seen, time - $t0) if $s == 200;
        sleep 0.05;
    }
    return (\%seen, time - $t0);
}

sub tally ($) {
    return rq($_[0], 'HGET', 'mdm:enr:{SENT-1}', 'token_update_tally') // 0;
}

sub scenario {
    my $w = start_worker(redis_sentinels => $ENV{TEST_NGINX_SENTINELS},
                         redis_master => $Master, redis_timeout => 2,
                         worker_id => 'sentinel-w', valgrind => 1);

    Test::More::is(checkin('Authenticate'), 200, 'Authenticate through the sentinels');
    Test::More::is(checkin('TokenUpdate'), 200, 'TokenUpdate through the sentinels');
    Test::More::is(tally($Port{a}), 1, 'written to the master the sentinels name');
    wait_until 10, 'the worker heartbeat on the master', sub {
        rq($Port{a}, 'EXISTS', 'mdm:worker:sentinel-w')
    };
    # acknowledged state is on the replica before the fault (async replication)
    rq($Port{a}, 'WAIT', 1, 2000);

    # 1. the master dies
    kill 'KILL', $Pid{a};
    waitpid($Pid{a}, 0);
    delete $Pid{a};
    my ($seen, $took) = until_200(30);
    Test::More::is($seen->{200}, 1, "after SIGKILL of the master: served again in "
                   . sprintf('%.1f', $took) . ' s') or Test::More::diag(Test::More::explain($seen));
    Test::More::is_deeply([ sort grep { $_ != 200 && $_ != 503 } keys %$seen ], [],
                          'nothing but 200 and 503 meanwhile');
    Test::More::is(master_port(), $Port{b}, 'the sentinels promoted the replica');
    Test::More::is(tally($Port{b}), 2, 'the new master has the earlier TokenUpdate and the new one');
    rq($Port{b}, 'DEL', 'mdm:worker:sentinel-w');
    Test::More::ok(eval { wait_until 15, 'the worker heartbeat on the new master', sub {
        rq($Port{b}, 'EXISTS', 'mdm:worker:sentinel-w') } }, 'mdm-worker follows the failover');

    # 2. the old master comes back: the sentinels make it a replica
    start_redis('a');
    wait_until 30, 'the old master to rejoin as a replica', sub {
        (rq($Port{a}, 'INFO', 'replication') // '') =~ /role:slave.*master_link_status:up/s
    };

    # 3. a switch back: the master still answers, demoted (READONLY)
    rq($Port{s1}, 'SENTINEL', 'FAILOVER', $Master);
    # until the old master is demoted too: in between, both take writes,
    # and what the old one takes is lost when it resyncs (Redis Sentinel's
    # window; see README, "Redis Sentinel")
    wait_until 30, 'the switch back', sub { master_port() == $Port{a}
        && (rq($Port{a}, 'ROLE') // [''])->[0] eq 'master'
        && (rq($Port{b}, 'ROLE') // [''])->[0] eq 'slave' };
    ($seen, $took) = until_200(30);
    Test::More::is($seen->{200}, 1, 'after SENTINEL FAILOVER: served again in '
                   . sprintf('%.1f', $took) . ' s') or Test::More::diag(Test::More::explain($seen));
    Test::More::is_deeply([ sort grep { $_ != 200 && $_ != 503 } keys %$seen ], [],
                          'nothing but 200 and 503 meanwhile');
    Test::More::is(tally($Port{a}), 3, 'the write went to the new master');
    rq($Port{a}, 'DEL', 'mdm:worker:sentinel-w');
    Test::More::ok(eval { wait_until 15, 'the worker heartbeat after the switch back', sub {
        rq($Port{a}, 'EXISTS', 'mdm:worker:sentinel-w') } }, 'mdm-worker follows the switch back');

    stop_worker($w);
    valgrind_clean($w, 'mdm-worker through two failovers');
    Test::More::unlike(worker_log($w), qr/\b(crit|alert)\b/, 'no critical worker log line');
}

mdm_defaults(
    http_config => q{
        mdm_redis sentinel=$TEST_NGINX_SENTINELS master=mdmtest timeout=1s;
        server {
            listen 127.0.0.1:$TEST_NGINX_SENT_PORT;
            location = /mdm/checkin {
                mdm_checkin;
                mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
            }
        }
    },
    config => q{
        location = /ping { return 200 "up\n"; }
    },
);

run_tests();

__DATA__

=== TEST 1: failover and switch back under nginx and mdm-worker, no restart
--- request
GET /ping
--- response_body
up
--- after_each eval
[ \&::scenario ]
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 2: bad directive forms fail nginx -t with a clear message
--- http_config
mdm_redis sentinel=127.0.0.1:1 timeout=1s;
--- config
--- must_die
--- error_log
"sentinel=" and "master=" go together
