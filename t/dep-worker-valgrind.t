# mdm-worker's DEP code under valgrind: fetch, sync, auto-assign with
# THROTTLED/FAILED/NOT_ACCESSIBLE, 401 replay, 503 Retry-After, 500
# backoff, cursor errors, a stop and a token PUT, proxy jobs, a Redis
# outage, then SIGTERM with a call in flight.  valgrind must report no
# error and no leak.
#
#     prove -I. -I t/lib t/dep-worker-valgrind.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time sleep);

plan skip_all => 'valgrind not installed' unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

redis_flush();

sub status { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:status") }; \%h }

sub synced {
    my ($name, $after, $what) = @_;
    wait_for(sub { my $s = status($name);
                   ($s->{phase} // '') eq 'idle' && ($s->{last_sync_at} // 0) > $after },
             90, $what);
    return status($name)->{last_sync_at};
}

my $dep = start_dep(fetch_max => 300);
dep_ctl($dep, 'devices', { add => 1500 });
dep_ctl($dep, 'assign_rules', { retry_after => 1, rules => {
    S0000001 => ['THROTTLED'], S0000002 => ['FAILED'], S0000003 => ['NOT_ACCESSIBLE'] } });
dep_ctl($dep, 'sessions', { rotate_every => 3 });
dep_name('vg', $dep, profile => 'PV');

my $hook = start_webhook();
my $w = start_worker(worker_id => 'dv', repush_interval => 0, valgrind => 1,
                     dep_backoff_ms => 300, dep_assign_backoff => 1,
                     webhook_url => $hook->{hook_url});
my $last = synced('vg', 0, 'fetch under valgrind');
wait_for(sub { dep_stats($dep)->{assigned_total} == 1499 }, 90, 'assigned under valgrind');
pass('fetch + auto-assign (THROTTLED, FAILED, NOT_ACCESSIBLE) under valgrind');

# errors on a sync
dep_ctl($dep, 'devices', { add => 5, prefix => 'N' });
dep_ctl($dep, 'devices', { delete => ['S0000010'] });
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 401 });
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 503, headers => { 'Retry-After' => '1' } });
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 500 });
redis('SADD', 'mdm:dep:syncnow', 'vg');
$last = synced('vg', $last, 'sync through 401, 503, 500');
pass('sync through 401, 503, 500');

dep_ctl($dep, 'cursors', { expire => 1 });
redis('SADD', 'mdm:dep:syncnow', 'vg');
$last = synced('vg', $last, 'expired cursor');
pass('expired cursor: fetched again');

# proxy jobs, one with a bad body
for my $i (1 .. 5) {
    redis('RPUSH', 'mdm:dep:proxy', encode_json({ id => sprintf('%032x', $i), name => 'vg',
        method => 'GET', path => '/account', body => '', deadline => int(time * 1000) + 30_000 }));
}
redis('RPUSH', 'mdm:dep:proxy', '{"id": 1}');
wait_for(sub { redis('GET', sprintf('mdm:dep:proxy:reply:%032x', 5)) }, 30, 'proxy replies');
pass('proxy jobs under valgrind');

# a stop, then a token PUT
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 403, body => 'T_C_NOT_SIGNED' });
redis('SADD', 'mdm:dep:syncnow', 'vg');
wait_for(sub { (status('vg')->{stopped} // '') eq '1' }, 30, 'stopped');
dep_name('vg', $dep, profile => 'PV', expiry => '2098-01-01T00:00:00Z');
redis('DEL', 'mdm:dep:vg:session');
redis('HDEL', 'mdm:dep:vg:status', 'stopped', 'stop_reason');
redis('SADD', 'mdm:dep:syncnow', 'vg');
$last = synced('vg', $last, 'resumed after the token PUT');
pass('stop and token PUT under valgrind');

# a Redis outage
redis('SAVE');
redis_stop();
sleep 1.5;
redis_start();
wait_for(sub { (redis_try('PING') // '') eq 'PONG' }, 10, 'Redis back');
redis('SADD', 'mdm:dep:syncnow', 'vg');
$last = eval { synced('vg', $last, 'sync after the Redis outage') }
    or do { diag $@; diag explain status('vg');
            diag join "\n", grep { defined } (split /\n/, worker_log($w))[-40 .. -1];
            diag 'worker ' . (kill(0, $w->{pid}) ? 'alive' : 'gone');
            diag `cat $w->{valgrind}`; 0 };
pass('Redis outage under valgrind');

# SIGTERM with a call out: the worker waits for it
dep_ctl($dep, 'slow', { '/devices/sync' => 1 });
redis('SADD', 'mdm:dep:syncnow', 'vg');
sleep 0.6;
is(stop_worker($w), 0, 'SIGTERM: exit 0');
valgrind_clean($w, 'DEP');
done_testing;
