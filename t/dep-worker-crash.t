# mdm-worker's DEP client, crash safety: a cursor is stored only with its
# page's devices and their queued assignments (one script), and a batch
# in flight when the worker dies is checked with Apple (POST /devices)
# before anything is assigned again.
#   SIGKILL with an assign call out (Apple did it, the worker never heard)
#   SIGKILL at random moments of a fetch + auto-assign
#   Redis killed and restarted (from its last save) under an assign call
# After each: every device present, each assigned exactly once, the cursor
# kept (a restart does not fetch everything again).
#
#     prove -I. -I t/lib t/dep-worker-crash.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use Time::HiRes qw(time sleep);
use POSIX qw(WNOHANG);

redis_flush();
our $w;

sub status { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:status") }; \%h }

sub worker { start_worker(worker_id => 'dk', repush_interval => 0, heartbeat => 1, @_) }

# every device of the mock recorded, assigned once, nothing left queued
# $n assigned since the last reset of the mock's stats, $total recorded
sub settled {
    my ($dep, $n, $what, $total) = @_;
    $total //= $n;
    eval { wait_for(sub {
        my $st = eval { dep_stats($dep) } or return 0;
        $st->{assigned_total} == $n
            && (redis_try('ZCARD', 'mdm:dep:k:serials') // 0) == $total
            && (redis_try('ZCARD', 'mdm:dep:k:assignq') // 1) == 0
            && (redis_try('HLEN', 'mdm:dep:k:assigning') // 1) == 0
            && (redis_try('HGET', 'mdm:dep:k:status', 'phase') // '') eq 'idle';
    }, 90, $what) };
    if ($@) { my $x = dep_stats($dep); delete $x->{times}; diag explain $x;
              diag explain { map { $_ => redis_try('ZCARD', "mdm:dep:k:$_") } qw(serials assignq gone) };
              diag explain status('k'); diag worker_log($w) }
    my $st = dep_stats($dep, 1);
    my @twice = grep { @{ $st->{attempts}{$_} } != 1 } keys %{ $st->{attempts} };
    is(scalar @twice, 0, "$what: each device assigned exactly once")
        or diag("assigned more than once: @twice[0 .. ($#twice > 9 ? 9 : $#twice)]");
    is($st->{assigned_total}, $n, "$what: all $n assigned");
    is(redis('ZCARD', 'mdm:dep:k:serials'), $total, "$what: all $total recorded");
    my $ok = 0;
    for my $s (keys %{ $st->{attempts} }) {
        $ok++ if (redis('HGET', "mdm:dep:k:dev:$s", 'assign_result') // '') eq 'SUCCESS';
    }
    is($ok, $n, "$what: assign_result SUCCESS on every record");
}

our $dep = start_dep(fetch_max => 250);


# --- SIGKILL with a batch at Apple -------------------------------------------

dep_ctl($dep, 'devices', { add => 2000 });
dep_name('k', $dep, profile => 'PK');
dep_ctl($dep, 'slow', { '/profile/devices' => 1.5 });
$w = worker();
wait_for(sub { redis('HLEN', 'mdm:dep:k:assigning') > 0 }, 20, 'a batch in flight');
kill_worker($w);
my $inflight = redis('HLEN', 'mdm:dep:k:assigning');
ok($inflight > 0, "killed with $inflight assignments in flight");
dep_ctl($dep, 'slow', {});
my $pages = dep_stats($dep)->{calls}{'/server/devices'};
$w = worker();
settled($dep, 2000, 'SIGKILL with a batch out');
like(worker_log($w), qr/assignments were in flight at the last stop/, 'recovery logged');
ok(dep_stats($dep)->{calls}{'/devices'} >= 1, 'checked with POST /devices');
ok(dep_stats($dep)->{calls}{'/server/devices'} <= 8 + 1,
   'the fetch went on from the stored cursor (at most one page asked twice)');
is(stop_worker($w), 0, 'clean exit');

# --- SIGKILL at random moments -----------------------------------------------

dep_ctl($dep, 'reset');
dep_ctl($dep, 'devices', { add => 3000, prefix => 'R' });
srand(11);
my $kills = 0;
for my $i (1 .. 8) {
    $w = worker();
    redis('SADD', 'mdm:dep:syncnow', 'k');
    sleep 0.15 + rand 0.5;
    kill_worker($w);
    $kills++;
}
$w = worker();
redis('SADD', 'mdm:dep:syncnow', 'k');
my %before = %{ dep_stats($dep, 1)->{attempts} };
settled($dep, 3000, "$kills SIGKILLs during a sync + auto-assign", 5000);
is_deeply([grep { !/^R/ } keys %{ dep_stats($dep, 1)->{attempts} }], [],
          'no device of the first part assigned again');
is(stop_worker($w), 0, 'clean exit');

# the cursor survives: a new worker syncs, it does not fetch
dep_ctl($dep, 'reset');
$w = worker();
my $at = status('k')->{last_sync_at};
redis('SADD', 'mdm:dep:syncnow', 'k');
wait_for(sub { (status('k')->{last_sync_at} // 0) > $at }, 20, 'sync after restart');
my $st = dep_stats($dep);
ok(!$st->{calls}{'/server/devices'}, 'restart: no fetch, the cursor was kept');
ok($st->{calls}{'/devices/sync'} >= 1, 'restart: sync from the stored cursor');
is(stop_worker($w), 0, 'clean exit');

# --- Redis killed and restarted (from its last save) under an assign ------------

dep_ctl($dep, 'reset');
dep_ctl($dep, 'devices', { add => 1000, prefix => 'Q' });
dep_ctl($dep, 'slow', { '/profile/devices' => 1.5 });
$w = worker();
redis('SADD', 'mdm:dep:syncnow', 'k');
wait_for(sub { redis('HLEN', 'mdm:dep:k:assigning') > 0 }, 20, 'a batch in flight');
redis('SAVE');
redis_stop();
sleep 2;              # the answer comes while Redis is down
redis_start();
wait_for(sub { (redis_try('PING') // '') eq 'PONG' }, 10, 'Redis loaded');
is(redis('HLEN', 'mdm:dep:k:assigning') > 0, 1, 'Redis came back with the batch in flight');
dep_ctl($dep, 'slow', {});
settled($dep, 1000, 'Redis restarted under an assign', 6000);
like(worker_log($w), qr/redis .*reconnecting/, 'the worker saw Redis go');

# a write to a Redis that has just died raises SIGPIPE: it must not end the
# worker (it did, silently, now and then in t/dep-worker-valgrind.t)
kill 'PIPE', $w->{pid};
sleep 0.3;
ok(waitpid($w->{pid}, WNOHANG) == 0, 'SIGPIPE does not kill the worker');
is(stop_worker($w), 0, 'the worker kept running: clean exit');

done_testing;
