# mdm-worker's DEP client (issue 11, worker side) against the DEP mock
# (t/servers/dep.pl): fetch of 10,000 devices in pages within /account's
# limit, sync of added/modified/deleted with events, each auto-assign case,
# THROTTLED/FAILED/NOT_ACCESSIBLE, session rotation, cursor errors, two
# names at once, a token PUT taking effect without a restart.
#
#     prove -I. -I t/lib t/dep-worker.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use Time::HiRes qw(time sleep);

redis_flush();

sub status { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:status") }; \%h }
sub dev { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:dev:$_[1]") }; \%h }

# waits until a sync cycle newer than $after is recorded
sub synced {
    my ($name, $after, $what) = @_;
    wait_for(sub { my $s = status($name);
                   ($s->{phase} // '') eq 'idle' && ($s->{last_sync_at} // 0) > $after },
             60, $what);
    return status($name)->{last_sync_at};
}

sub sync_now { redis('SADD', 'mdm:dep:syncnow', $_[0]) }

sub events {
    my ($type, $serial) = @_;
    my @out;
    for my $e (@{ redis('XRANGE', 'mdm:events', '-', '+') }) {
        my %f = @{ $e->[1] };
        push @out, \%f if $f{type} eq $type && (!defined $serial || $f{serial} eq $serial);
    }
    return @out;
}

# --- 10,000 devices, pages within /account's limit --------------------

my $dep = start_dep(fetch_max => 500, sync_max => 200);
dep_ctl($dep, 'devices', { add => 9990 });
dep_ctl($dep, 'devices', { add => ['OTHER1', 'OTHER2'], profile_status => 'assigned',
                           profile_uuid => 'SOMEONE-ELSE' });
dep_ctl($dep, 'devices', { add => [map { "PUSHED$_" } 1 .. 8], profile_status => 'pushed',
                           profile_uuid => 'PROF-A' });
dep_ctl($dep, 'sessions', { rotate_every => 4 });
dep_name('acme', $dep, profile => 'PROF-A');

my $t0 = time * 1000;
my $w = start_worker(worker_id => 'dw', repush_interval => 0);
my $last = synced('acme', 0, 'first fetch of 10,000');

my $st = dep_stats($dep);
is(status('acme')->{devices}, 10000, 'status: 10,000 devices');
is(redis('ZCARD', 'mdm:dep:acme:serials'), 10000, '10,000 serials in the zset');
is($st->{calls}{'/server/devices'}, 20, 'fetched in 20 pages of 500');
is($st->{limits}{'/server/devices'}, 500, 'page size = /account limit.maximum (500), not dep_page_size (1000)');
is_deeply($st->{violations}, [], 'no call the mock refused as malformed');
is($st->{calls}{'/session'}, 1, 'one GET /session: rotated sessions (every 4 calls) were followed');
ok($st->{sessions_issued} > 5, "the mock rotated the session ($st->{sessions_issued} issued)");
ok(redis('TTL', 'mdm:dep:acme:session') > 0, 'the newest session stored with a TTL');
my $d = dev('acme', 'S0000001');
is($d->{serial_number}, 'S0000001', 'record has Apple field serial_number');
is($d->{model}, 'MacBook Air', 'and model');
is($d->{device_family}, 'Mac', 'and device_family');
ok($d->{updated_at} >= $t0, 'and our updated_at');
ok(redis('GET', 'mdm:dep:acme:cursor'), 'cursor stored');
is(scalar(events('dep.device.added')), 10000, '10,000 dep.device.added events');
is(scalar(events('dep.sync')), 1, 'one dep.sync event');
is(status('acme')->{token_expiry}, 4070908800000, 'status: token_expiry (ms) from the token');

wait_for(sub { dep_stats($dep)->{assigned_total} == 9990 }, 60, 'auto-assign of the fetched');
$st = dep_stats($dep, 1);
is($st->{assigned_total}, 9990, 'present at the first fetch with no profile: assigned (9,990)');
ok(!$st->{attempts}{OTHER1}, 'a device with another server\'s profile is not assigned');
ok(!$st->{attempts}{PUSHED1}, 'nor one that has our profile already');
ok(!grep({ $_ > 1000 } @{ $st->{assign_sizes} }), 'batches of at most 1,000 serials');
is($st->{assigned_multi}, 0, 'each assigned once');
is(dev('acme', 'S0000005')->{assign_result}, 'SUCCESS', 'assign_result SUCCESS recorded');
is(redis('HGET', 'mdm:dep:profiles', 'S0000005'), 'PROF-A', 'mdm:dep:profiles has the profile');

# --- sync: added, modified, deleted ------------------------------------

dep_ctl($dep, 'devices', { add => ['NEW1', 'NEW2'] });
dep_ctl($dep, 'devices', { add => ['NEWP'], profile_status => 'assigned', profile_uuid => 'X' });
dep_ctl($dep, 'devices', { modify => ['OTHER1'], fields => { profile_status => 'removed', profile_uuid => '' } });
dep_ctl($dep, 'devices', { modify => ['OTHER2'], fields => { color => 'GOLD' } });
dep_ctl($dep, 'devices', { modify => ['PUSHED1'], fields => { profile_status => 'empty', profile_uuid => '' } });
dep_ctl($dep, 'devices', { delete => ['S0000009'] });
sync_now('acme');
$last = synced('acme', $last, 'sync after changes');
wait_for(sub { my $a = dep_stats($dep, 1)->{attempts};
               $a->{NEW1} && $a->{NEW2} && $a->{OTHER1} && $a->{PUSHED1} }, 20,
         'assignments of the sync');
$st = dep_stats($dep, 1);
ok($st->{attempts}{NEW1}, 'added: assigned');
ok($st->{attempts}{NEWP}, 'added with another profile: assigned (ABM put it on us)');
ok($st->{attempts}{OTHER1}, 'modified with profile_status removed (moved from another MDM server): assigned');
ok($st->{attempts}{PUSHED1}, 'modified with profile_status empty: assigned');
ok(!$st->{attempts}{OTHER2}, 'modified with a profile: not assigned');
is(dev('acme', 'OTHER2')->{color}, 'GOLD', 'modified record updated');
is(dev('acme', 'OTHER2')->{op_type}, 'modified', 'op_type recorded');
ok(dev('acme', 'OTHER2')->{op_date}, 'op_date recorded');
is(dev('acme', 'S0000009')->{op_type}, 'deleted', 'deleted device kept with op_type deleted');
ok(redis('ZSCORE', 'mdm:dep:acme:gone', 'S0000009'), 'and in the deleted set (retention)');
ok(!defined redis('HGET', 'mdm:dep:profiles', 'S0000009'), 'and gone from mdm:dep:profiles');
is(scalar(events('dep.device.deleted', 'S0000009')), 1, 'dep.device.deleted event');
is(scalar(events('dep.device.added', 'NEW1')), 1, 'dep.device.added event for NEW1');
ok(scalar(events('dep.device.modified', 'OTHER2')) >= 1, 'dep.device.modified event for OTHER2');
is(status('acme')->{devices}, 10000 + 3 - 1, 'device count follows');
is($st->{assigned_multi}, 0, 'still each assigned once (our own assigns come back "modified" + assigned)');
is($st->{calls}{'/server/devices'}, 20, 'sync did not fetch again');
is_deeply($st->{violations}, [], 'no violations');
ok($st->{limits}{'/devices/sync'} <= 200, 'sync page size within /account limit (200)');

# --- THROTTLED, FAILED, NOT_ACCESSIBLE ---------------------------------

is(stop_worker($w), 0, 'clean exit');
$w = start_worker(worker_id => 'dw', repush_interval => 0, dep_assign_backoff => 1,
                  dep_assign_retries => 3);
dep_ctl($dep, 'assign_rules', { retry_after => 2, rules => {
    T1 => ['THROTTLED'], F1 => ['FAILED', 'FAILED'], F2 => ['FAILED', 'FAILED', 'FAILED', 'FAILED'],
    N1 => ['NOT_ACCESSIBLE'] } });
dep_ctl($dep, 'devices', { add => ['T1', 'F1', 'F2', 'N1'] });
sync_now('acme');
$last = synced('acme', $last, 'sync of T1 F1 F2 N1');
wait_for(sub { my $a = dep_stats($dep, 1)->{attempts};
               @{ $a->{T1} // [] } >= 2 && @{ $a->{F1} // [] } >= 3 && @{ $a->{F2} // [] } >= 3 }, 30,
         'retries');
sleep 2.5;
$st = dep_stats($dep, 1);
my $a = $st->{attempts};
is_deeply([map { $_->[1] } @{ $a->{T1} }], ['THROTTLED', 'SUCCESS'], 'THROTTLED then retried: SUCCESS');
my $gap = $a->{T1}[1][0] - $a->{T1}[0][0];
ok($gap >= 1.9 && $gap < 5, "THROTTLED retried after retry_after_seconds 2 (${gap}s)");
is_deeply([map { $_->[1] } @{ $a->{F1} }], ['FAILED', 'FAILED', 'SUCCESS'], 'FAILED retried until SUCCESS');
my @g = map { $a->{F1}[$_][0] - $a->{F1}[$_ - 1][0] } 1, 2;
ok($g[0] >= 0.9 && $g[1] >= 1.9 && $g[1] < 6, "with backoff 1 s, 2 s (@g)");
is(scalar @{ $a->{F2} }, 3, 'FAILED given up after dep_assign_retries (3)');
like(dev('acme', 'F2')->{assign_error}, qr/given up after 3/, 'assign_error says so');
is(scalar @{ $a->{N1} }, 1, 'NOT_ACCESSIBLE: not retried');
is(dev('acme', 'N1')->{assign_result}, 'NOT_ACCESSIBLE', 'NOT_ACCESSIBLE recorded');
is(dev('acme', 'T1')->{assign_result}, 'SUCCESS', 'T1 SUCCESS recorded');
is(redis('ZCARD', 'mdm:dep:acme:assignq'), 0, 'assign queue empty');
is(redis('HLEN', 'mdm:dep:acme:assigning'), 0, 'nothing in flight');

# --- cursors -------------------------------------------------------------

dep_ctl($dep, 'reset');
dep_ctl($dep, 'cursors', { expire => 1 });
sync_now('acme');
$last = synced('acme', $last, 'expired cursor: full fetch again');
$st = dep_stats($dep);
ok($st->{calls}{'/server/devices'} >= 20, 'EXPIRED_CURSOR: fetched everything again');
like(worker_log($w), qr/EXPIRED_CURSOR/, 'logged');
is($st->{assigned_total}, 0, 'refetch assigns nothing again');

dep_ctl($dep, 'reset');
redis('SET', 'mdm:dep:acme:cursor', 'garbage');
redis('HSET', 'mdm:dep:acme:status', 'phase', 'idle');
# the lane reads the stored cursor when it starts a cycle
is(stop_worker($w), 0, 'clean exit');
$w = start_worker(worker_id => 'dw', repush_interval => 0);
sync_now('acme');
$last = synced('acme', $last, 'invalid cursor: full fetch again');
ok(dep_stats($dep)->{calls}{'/server/devices'} >= 20, 'INVALID_CURSOR: fetched everything again');
like(worker_log($w), qr/INVALID_CURSOR/, 'logged');

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 400, body => '"EXHAUSTED_CURSOR"' });
sync_now('acme');
$last = synced('acme', $last, 'exhausted cursor');
$st = dep_stats($dep);
is($st->{calls}{'/devices/sync'}, 2, 'EXHAUSTED_CURSOR on sync: synced again');
ok(!$st->{calls}{'/server/devices'}, 'and no fetch');

# --- two names, a token PUT without restart -------------------------------

my $dep2 = start_dep();
dep_ctl($dep2, 'devices', { add => 300, prefix => 'B' });
dep_name('beta', $dep2, profile => 'PROF-B', slash => 1);   # base_url with a trailing /
$last = synced('beta', 0, 'second name fetched');
wait_for(sub { dep_stats($dep2)->{assigned_total} == 300 }, 30, 'beta assigned');
is(status('beta')->{devices}, 300, 'beta: 300 devices');
# the mock counts an assignment when it answers; the worker records it after
ok(eval { wait_for(sub { (redis('HGET', 'mdm:dep:profiles', 'B0000001') // '') eq 'PROF-B' },
                   10, 'beta profile recorded') }, 'beta profile recorded');
is(status('acme')->{devices}, 10006, 'acme untouched');

# a token for another mock (a PUT): the next call uses it
my $dep3 = start_dep();
dep_ctl($dep3, 'devices', { add => 5, prefix => 'C' });
redis('DEL', 'mdm:dep:beta:cursor');
redis('HSET', 'mdm:dep:beta:status', 'phase', 'fetch');
dep_name('beta', $dep3, profile => 'PROF-B');
redis('DEL', 'mdm:dep:beta:session');
sync_now('beta');
wait_for(sub { (dep_stats($dep3)->{calls}{'/server/devices'} // 0) >= 1 }, 20,
         'new token and base_url used without a restart');
pass('token and config changes apply without a restart');

is(stop_worker($w), 0, 'clean exit');
unlike(worker_log($w), qr/\berror\b/, 'no errors logged');

# --- dep_sync_interval, and one worker at a time -----------------------------

dep_ctl($dep, 'reset');
my $w1 = start_worker(worker_id => 'dw1', repush_interval => 0, dep_sync_interval => 1);
wait_for(sub { (redis('GET', 'mdm:dep:leader') // '') eq 'dw1' }, 10, 'dw1 leads');
my $w2 = start_worker(worker_id => 'dw2', repush_interval => 0, dep_sync_interval => 1);
sleep 3.5;
my @t = @{ dep_stats($dep)->{times}{'/devices/sync'} // [] };
ok(@t >= 3 && @t <= 6, 'dep_sync_interval 1: a sync every second (' . scalar(@t) . ' in 3.5 s)');
ok(!grep({ $t[$_] - $t[$_ - 1] < 0.9 } 1 .. $#t), 'never sooner');
unlike(worker_log($w2), qr/dep acme/, 'the second worker leaves DEP alone');
is(redis('GET', 'mdm:dep:leader'), 'dw1', 'mdm:dep:leader: the first');
my $t1 = time;
is(stop_worker($w1), 0, 'the leader stops (SIGTERM)');
ok(!defined redis('GET', 'mdm:dep:leader') || redis('GET', 'mdm:dep:leader') eq 'dw2',
   'and gives the lease up');
wait_for(sub { (redis('GET', 'mdm:dep:leader') // '') eq 'dw2' }, 5, 'dw2 takes over');
sync_now('acme');
$last = synced('acme', $last, 'the second worker syncs');
ok(time - $t1 < 2, sprintf('taken over at once (%.1f s), not after the lease', time - $t1));
is(stop_worker($w2), 0, 'clean exit');

# --- retention: deleted devices, the event stream -------------------------------

redis('DEL', 'mdm:events');
my $dep4 = start_dep();
dep_ctl($dep4, 'devices', { add => 3000, prefix => 'T' });
dep_name('ret', $dep4);
$w = start_worker(worker_id => 'dw', repush_interval => 0, dep_deleted_ttl => 1,
                  dep_events_max => 100);
$last = synced('ret', 0, 'ret fetched');
is(dep_stats($dep4)->{assign_calls}, 0, 'no assigner profile: nothing assigned');
redis('HSET', 'mdm:dep:ret:assigner', 'profile_uuid', 'PROF-R');
redis('DEL', 'mdm:dep:ret:cursor');
sync_now('ret');
$last = synced('ret', $last, 'ret: fetched again with a profile');
wait_for(sub { dep_stats($dep4)->{assigned_total} == 3000 }, 30,
         'the devices fetched without a profile are assigned after a refetch');
pass('a refetch assigns the devices fetched while the name had no profile');
my $xlen = redis('XLEN', 'mdm:events');
ok($xlen < 1000, "3,000 events with dep_events_max 100: mdm:events kept at $xlen");
dep_ctl($dep4, 'devices', { delete => ['T0000001'] });
sync_now('ret');
$last = synced('ret', $last, 'ret: the deletion');
ok(redis('EXISTS', 'mdm:dep:ret:dev:T0000001'), 'a deleted device is kept for a while');
sleep 1.2;
sync_now('ret');
$last = synced('ret', $last, 'ret: a sync after dep_deleted_ttl');
ok(!redis('EXISTS', 'mdm:dep:ret:dev:T0000001'), 'after dep_deleted_ttl its record is gone');
ok(!defined redis('ZSCORE', 'mdm:dep:ret:serials', 'T0000001'), 'and its serial');
is(redis('ZCARD', 'mdm:dep:ret:gone'), 0, 'and the deleted set is empty');
is(status('ret')->{devices}, 2999, 'devices: 2,999');
is(stop_worker($w), 0, 'clean exit');

done_testing;
