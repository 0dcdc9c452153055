# mdm-worker's VPP code under valgrind: token jobs (bad, bound to another
# MDM, forced, good), paged sync, deltas, 429/503/500, a 200 whose body is
# an error, an install in batches with 9709, a remove, a stop and a token
# job, a Redis outage, then SIGTERM with a call in flight.  valgrind must
# report no error and no leak.
#
#     prove -I. -I t/lib t/vpp-worker-valgrind.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMVpp;
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

plan skip_all => 'valgrind not installed' unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH};

redis_flush();

my $vpp = start_vpp();
my $tok = vpp_ctl($vpp, 'location', { name => 'L1', exp => int(time) + 5 * 86400 })->{token};
vpp_ctl($vpp, 'assets', { location => 'L1', assets => [
    { adamId => '5', total => 120 }, map { { adamId => "9$_", total => 3 } } 1 .. 30 ] });
vpp_ctl($vpp, 'config', { maxSerialNumbers => 50, page_size => 10, asg_page_size => 40,
                          event_delay => 0.3 });
vpp_config('vg', $vpp, notify_url => "$vpp->{url}/_ctl/sink/vg");
my $taken = vpp_ctl($vpp, 'location', { name => 'T', mdm => { id => 'X', name => 'x' } })->{token};
vpp_config('taken', $vpp);

my $w = start_worker(worker_id => 'vv', repush_interval => 0, valgrind => 1,
                     vpp_poll_ms => 100, vpp_backoff_ms => 200);
my $slow = 3;

is(vpp_job_wait(vpp_job('vg', 'token', token => 'x'), 60)->{status}, 422, 'bad token: 422');
is(vpp_job_wait(vpp_job('taken', 'token', token => $taken), 60)->{status}, 409, 'bound: 409');
is(vpp_job_wait(vpp_job('taken', 'token', token => $taken, force => JSON::PP::true), 60)->{status},
   200, 'forced: 200');
redis('RPUSH', 'mdm:vpp:jobs', '{"id": 1}', 'not json', '{"id":"' . ('a' x 32) . '","name":"bad name","op":"sync"}');
is(vpp_job_wait(vpp_job('vg', 'token', token => $tok), 60)->{status}, 200, 'token: 200');
wait_for(sub { vpp_status('vg')->{last_sync_at} }, 60, 'first sync');
is(vpp_status('vg')->{assets}, 31, 'assets in pages');

vpp_ctl($vpp, 'assign', { location => 'L1', adamId => '91', serials => ['X1'] });
vpp_ctl($vpp, 'inject', { path => '/assets', status => 429, headers => { 'Retry-After' => '1' } });
vpp_ctl($vpp, 'inject', { path => '/assignments', status => 503, headers => { 'Retry-After' => '1' } });
vpp_ctl($vpp, 'inject', { path => '/assignments', status => 500 });
is(vpp_job_wait(vpp_job('vg', 'sync'), 60)->{status}, 200, 'sync through 429, 503, 500');
vpp_ctl($vpp, 'inject', { path => '/assets', status => 200, body => '{"errorNumber":9602}' });
is(vpp_job_wait(vpp_job('vg', 'sync'), 60)->{status}, 502, '200 with an error');
redis('SADD', 'mdm:vpp:syncnow', 'vg');

for my $i (1 .. 130) { redis('HSET', "mdm:enr:{V$i}", 'enabled', 1) }
my ($iid) = vpp_install('vg', adam => '5', devs => [map { [sprintf('S%03d', $_), "V$_"] } 1 .. 130]);
wait_for(sub { (redis('HGET', "mdm:vpp:install:$iid", 'state') // '') eq 'done' }, 90, 'install');
is(redis('HGET', "mdm:vpp:install:$iid", 'failed'), 10, 'install: 10 failed (9709)');
my ($rid) = vpp_install('vg', action => 'remove', adam => '5', devs => [['S001', 'V1'], ['S002', undef]]);
wait_for(sub { (redis('HGET', "mdm:vpp:install:$rid", 'state') // '') eq 'done' }, 90, 'remove');
pass('remove');

# a stop, an install while stopped, a token job
vpp_ctl($vpp, 'token', { token => $tok, state => 'revoked' });
redis('SADD', 'mdm:vpp:syncnow', 'vg');
wait_for(sub { (vpp_status('vg')->{stopped} // '') eq '1' }, 60, 'stopped');
($iid) = vpp_install('vg', adam => '5', devs => [['Z1', undef]]);
wait_for(sub { (redis('HGET', "mdm:vpp:install:$iid", 'state') // '') eq 'failed' }, 60, 'failed');
vpp_ctl($vpp, 'token', { token => $tok, state => 'ok' });
is(vpp_job_wait(vpp_job('vg', 'token', token => $tok), 60)->{status}, 200, 'token job after the stop');

# a Redis outage
my $last = vpp_status('vg')->{last_sync_at} // 0;
redis('SAVE');
redis_stop();
sleep 1.5;
redis_start();
wait_for(sub { (redis_try('PING') // '') eq 'PONG' }, 10, 'Redis back');
redis('SADD', 'mdm:vpp:syncnow', 'vg');
wait_for(sub { (vpp_status('vg')->{last_sync_at} // 0) > $last }, 60, 'sync after the outage');
pass('Redis outage');

# SIGTERM with a call out: the worker waits for it
vpp_ctl($vpp, 'slow', { '/assets' => 1 });
redis('SADD', 'mdm:vpp:syncnow', 'vg');
sleep 0.6;
is(stop_worker($w), 0, 'SIGTERM: exit 0');
valgrind_clean($w, 'VPP');
done_testing;
