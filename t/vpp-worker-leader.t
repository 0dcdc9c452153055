# Several mdm-workers, one VPP leader (mdm:vpp:leader, as DEP's): only the
# leader calls Apple; when it dies in the middle of an install (SIGKILL,
# an event pending) another takes the job up from mdm:vpp:running and ends
# it: every device associated and queued once, no count twice; the
# vpp.install event reaches the webhook.
#
#     prove -I. -I t/lib t/vpp-worker-leader.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMVpp;
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

redis_flush();

my $vpp = start_vpp();
my $tok = vpp_ctl($vpp, 'location', { name => 'L1' })->{token};
vpp_ctl($vpp, 'assets', { location => 'L1', assets => [{ adamId => '77', total => 1000 }] });
vpp_ctl($vpp, 'config', { maxSerialNumbers => 100, event_delay => 1.5 });
vpp_config('acme', $vpp);

my $hook = start_webhook();
my %opt = (repush_interval => 0, vpp_poll_ms => 100, vpp_poll_max => 1, heartbeat => 1,
           webhook_url => $hook->{hook_url});
my $a = start_worker(worker_id => 'va', %opt);
my $b = start_worker(worker_id => 'vb', %opt);

is(vpp_job_wait(vpp_job('acme', 'token', token => $tok))->{status}, 200, 'token: 200');
my $leader = redis('GET', 'mdm:vpp:leader');
ok($leader eq 'va' || $leader eq 'vb', "one leader ($leader)");
my ($lw, $other) = $leader eq 'va' ? ($a, $b) : ($b, $a);
wait_for(sub { vpp_status('acme')->{last_sync_at} }, 30, 'first sync');
ok(worker_log($lw) =~ /vpp acme: synced/, 'the leader synced');
ok(worker_log($other) !~ /vpp acme/, 'the other did nothing');

for my $i (1 .. 300) {
    redis('HSET', "mdm:enr:{D$i}", 'enabled', 1);
}
my ($iid, $uuid) = vpp_install('acme', adam => '77',
                               devs => [map { [sprintf('S%03d', $_), "D$_"] } 1 .. 300]);
wait_for(sub { @{ vpp_stats($vpp)->{batches} } == 2 }, 30, 'two batches sent');
kill_worker($lw);
pass('the leader killed with the second batch\'s event pending');
is(redis('HLEN', 'mdm:vpp:running'), 1, 'its job is in mdm:vpp:running');

wait_for(sub { (redis('HGET', "mdm:vpp:install:$iid", 'state') // '') eq 'done' }, 60,
         'the install done by the other worker');
like(worker_log($other), qr/vpp: leader/, 'the other became the leader');
my %h = @{ redis('HGETALL', "mdm:vpp:install:$iid") };
is($h{associated}, 300, '300 associated, none counted twice');
is($h{queued}, 300, '300 queued');
is($h{failed}, 0, 'none failed');
my $twice = grep { @{ redis('LRANGE', "mdm:q:{D$_}", 0, -1) } != 1 } 1 .. 300;
is($twice, 0, 'each queue holds the command once');
is(redis('SCARD', "mdm:cmd:$uuid:targets"), 300, '300 targets');
is(scalar @{ vpp_stats($vpp)->{locations}{L1}{assignments}{77} }, 300, '300 licenses at Apple');
is(redis('HLEN', 'mdm:vpp:running'), 0, 'mdm:vpp:running empty');

# V5: the event reaches the webhook, DEP's shape with vpp_event
my @hooks;
wait_for(sub { @hooks = grep { $_->{topic} eq 'vpp.install' }
                        map { decode_json($_->{body}) } webhook_requests($hook); @hooks },
         30, 'the vpp.install webhook');
is(scalar @hooks, 1, 'one vpp.install event (delivered, so trimmed from the stream)');
is($hooks[0]{vpp_event}{install_id}, $iid, 'webhook: vpp.install with vpp_event.install_id');
is($hooks[0]{vpp_event}{queued}, 300, 'and the counts');
like($hooks[0]{created_at}, qr/^\d{4}-\d\d-\d\dT/, 'created_at');

is(stop_worker($other), 0, 'the other exits 0');
is(redis('GET', 'mdm:vpp:leader'), undef, 'and gave the lease up');
done_testing;
