# mdm-worker's Apps and Books (VPP) client (issue 17, worker side) against
# the v2 mock (t/servers/vpp.pl), driven through Redis as the module would
# (V1-V5): token validation (bound to another MDM, force, Apple's errors,
# a 200 whose body is an error), assets paged by pageIndex, assignments
# full and by sinceVersionId, an install to 500 devices in batches of
# maxSerialNumbers 100 where licenses run out (9709 per serial), a remove.
#
#     prove -I. -I t/lib t/vpp-worker.t

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
my $tok = vpp_ctl($vpp, 'location', { name => 'Main St', org => 'Acme' })->{token};
vpp_ctl($vpp, 'assets', { location => 'Main St', assets => [
    map { { adamId => "10$_", total => 5 } } 1 .. 250 ] });
vpp_ctl($vpp, 'assets', { location => 'Main St', assets => [
    { adamId => '361309726', total => 450 } ] });
vpp_ctl($vpp, 'config', { maxSerialNumbers => 100, page_size => 100, asg_page_size => 300 });
vpp_ctl($vpp, 'assign', { location => 'Main St', adamId => '101',
                          serials => [map { "OLD$_" } 1 .. 3] });
vpp_config('acme', $vpp);

my $w = start_worker(worker_id => 'vw', repush_interval => 0, vpp_poll_ms => 100,
                     vpp_backoff_ms => 200);

# --- token --------------------------------------------------------------

# jobs that are not: dropped, answered when they have an id, none kept
redis('RPUSH', 'mdm:vpp:jobs', 'not json', '{"id": 1}', '{"id":"' . ('b' x 32) . '","op":"dance","name":"acme"}');
my $bid = 'c' x 32;
redis('RPUSH', 'mdm:vpp:jobs', qq({"id":"$bid","name":"bad name","op":"sync","deadline":0}));
my $r = vpp_job_wait($bid);
is($r->{status}, 400, 'a job for an invalid location name: 400');
sleep 0.5;
is(join(',', @{ redis('HKEYS', 'mdm:vpp:running') }), '', 'jobs that are not jobs leave nothing in mdm:vpp:running');

$r = vpp_job_wait(vpp_job('acme', 'token', token => 'bm90IGEgdG9rZW4='));
is($r->{status}, 422, 'not a content token: 422');

my $bad = 'eyJ0b2tlbiI6Im5vcGUiLCJleHBEYXRlIjoiMjA5OS0wMS0wMVQwMDowMDowMCswMDAwIiwib3JnTmFtZSI6IngifQ==';
$r = vpp_job_wait(vpp_job('acme', 'token', token => $bad));
is($r->{status}, 422, 'a token Apple does not know: 422');
is($r->{body}{error_number}, 9722, 'with Apple\'s error number 9722');
ok(!defined redis('GET', 'mdm:vpp:acme:token'), 'and nothing stored');

# a 200 whose body is an error is the error
vpp_ctl($vpp, 'inject', { path => '/client/config', status => 200,
                          body => '{"errorNumber":9625,"errorMessage":"Token revoked"}' });
$r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
is($r->{status}, 422, 'HTTP 200 with errorNumber 9625: 422');
is($r->{body}{error_number}, 9625, 'error_number 9625');
ok(!defined redis('GET', 'mdm:vpp:acme:token'), 'not stored');

# bound to another MDM
my $other = vpp_ctl($vpp, 'location', { name => 'Taken', mdm => { id => 'OTHER-MDM', name => 'Jamf' } })->{token};
vpp_config('taken', $vpp);
$r = vpp_job_wait(vpp_job('taken', 'token', token => $other));
is($r->{status}, 409, 'a location bound to another MDM: 409');
is($r->{body}{error}, 'bound to another MDM', 'error says so');
is($r->{body}{mdm}{id}, 'OTHER-MDM', 'and names the other MDM');
is(vpp_stats($vpp)->{locations}{Taken}{mdm}{id}, 'OTHER-MDM', 'the location was not taken');
$r = vpp_job_wait(vpp_job('taken', 'token', token => $other, force => JSON::PP::true));
is($r->{status}, 200, 'force: 200');
my $ours = redis('HGET', 'mdm:vpp:mdminfo', 'id');
like($ours, qr/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/, 'our mdmInfo id is a UUID');
is(redis('HGET', 'mdm:vpp:mdminfo', 'name'), 'ngx_mdm', 'named ngx_mdm');
is(vpp_stats($vpp)->{locations}{Taken}{mdm}{id}, $ours, 'force: the location is ours now');

# the good one
vpp_ctl($vpp, 'reset');
$r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
is($r->{status}, 200, 'valid token: 200');
is($r->{body}{org}, 'Acme', 'org from the token');
is($r->{body}{location}, 'Main St', 'location from Apple\'s locationName');
ok($r->{body}{token_expiry} > time + 300 * 86400, 'token_expiry from expDate (unix s)');
is(redis('GET', 'mdm:vpp:acme:token'), $tok, 'the sToken stored as downloaded');
is(redis('SISMEMBER', 'mdm:vpp:names', 'acme'), 1, 'in mdm:vpp:names');
is(vpp_stats($vpp)->{locations}{'Main St'}{mdm}{id}, $ours, 'mdmInfo set at Apple');
is_deeply(vpp_stats($vpp)->{violations}, [], 'no call the mock refused as malformed');

# --- sync -------------------------------------------------------------

wait_for(sub { (vpp_status('acme')->{last_sync_at} // 0) > 0 }, 30, 'first sync');
my $st = vpp_status('acme');
is($st->{assets}, 251, 'status: 251 assets');
is(redis('HLEN', 'mdm:vpp:acme:assets'), 251, '251 assets stored');
my $a = decode_json(redis('HGET', 'mdm:vpp:acme:assets', '361309726'));
is($a->{availableCount}, 450, 'Apple\'s item JSON verbatim (availableCount)');
my @pages = grep { m{^/assets(\?|$)} } map { decode_json($_)->{path} } split /\n/, `cat $vpp->{log}`;
# (the other location, "Taken", has one empty page of its own)
is_deeply([sort @pages], ['/assets', '/assets', '/assets?pageIndex=1', '/assets?pageIndex=2'],
          'assets in 3 pages of 100 (pageIndex), no page past nextPageIndex');
is_deeply([sort @{ redis('SMEMBERS', 'mdm:vpp:acme:asg:101') }], [qw(OLD1 OLD2 OLD3)],
          'assignments: asg:ADAMID');
is_deeply(redis('SMEMBERS', 'mdm:vpp:acme:sasg:OLD2'), ['101'], 'and sasg:SERIAL');
ok($st->{version_id}, "version_id kept ($st->{version_id})");
is($st->{last_result}, 'ok', 'last_result ok');
is($st->{location}, 'Main St', 'status: location');
is($st->{org}, 'Acme', 'status: org');

# --- install to 500, 450 licenses ------------------------------------

for my $i (1 .. 500) {
    redis('HSET', "mdm:enr:{DEV$i}", 'enabled', 1, 'serial_number', sprintf('SER%04d', $i),
          'topic', 'com.apple.mgmt.vpptest', 'token', 'ab' x 32, 'push_magic', 'M');
}
my @devs = map { [sprintf('SER%04d', $_), "DEV$_"] } 1 .. 500;
my ($iid, $uuid) = vpp_install('acme', adam => '361309726', devs => \@devs);
wait_for(sub { (redis('HGET', "mdm:vpp:install:$iid", 'state') // '') =~ /^(done|failed)$/ },
         60, 'install done');
my %ih = @{ redis('HGETALL', "mdm:vpp:install:$iid") };
is($ih{state}, 'done', 'install: done');
is($ih{associated}, 450, '450 associated');
is($ih{queued}, 450, '450 queued');
is($ih{failed}, 50, '50 failed');
$st = vpp_stats($vpp);
is_deeply($st->{batches}, [100, 100, 100, 100, 100], '5 batches of maxSerialNumbers 100');
is_deeply($st->{violations}, [], 'no violation');
my $d = decode_json(redis('HGET', "mdm:vpp:install:$iid:dev", 'SER0500'));
is($d->{state}, 'failed', 'the 500th: failed');
is($d->{error_number}, 9709, 'with 9709 (not enough licenses)');
$d = decode_json(redis('HGET', "mdm:vpp:install:$iid:dev", 'SER0001'));
is($d->{state}, 'queued', 'the first: queued');
is_deeply(redis('LRANGE', 'mdm:q:{DEV1}', 0, -1), [$uuid], 'the command is in its queue');
is_deeply(redis('LRANGE', 'mdm:q:{DEV500}', 0, -1), [], 'not in a failed device\'s queue');
is(redis('SCARD', "mdm:cmd:$uuid:targets"), 450, '450 targets');
ok(redis('TTL', "mdm:cmd:$uuid:targets") > 0, 'the targets expire with the command');
# pushed (C1): the worker's APNs part tried each, and found no certificate
wait_for(sub { worker_log($w) =~ /enrollment "DEV450"/ }, 10, 'the pushes');
my %pushed = map { $_ => 1 } worker_log($w) =~ /no push certificate for topic \S+ \(enrollment "(DEV\d+)"\)/g;
is(scalar keys %pushed, 450, 'one push for each of the 450 associated devices');
ok(!$pushed{DEV451} && !$pushed{DEV500}, 'none for a failed one');
ok(redis('TTL', "mdm:vpp:install:$iid") > 29 * 86400, 'install hash: 30 days');
ok(redis('TTL', "mdm:vpp:install:$iid:dev") > 29 * 86400, 'dev hash: 30 days');
is(redis('SCARD', 'mdm:vpp:acme:asg:361309726'), 450, 'asg:ADAMID: the 450');
is_deeply(redis('SMEMBERS', 'mdm:vpp:acme:sasg:SER0003'), ['361309726'], 'sasg:SERIAL');
my @ev = grep { $_->{install_id} eq $iid } vpp_events('vpp.install');
is(scalar @ev, 1, 'one vpp.install event');
is($ev[0]{state}, 'done', 'state done');
is($ev[0]{failed}, 50, 'failed 50');
is(join(',', @{ redis('HKEYS', 'mdm:vpp:running') }), '', 'nothing left in mdm:vpp:running');

# --- delta sync ---------------------------------------------------------

vpp_ctl($vpp, 'assign', { location => 'Main St', adamId => '102', serials => ['NEW1'] });
my $calls = vpp_stats($vpp)->{calls}{'/assignments'};
my $last = vpp_status('acme')->{last_sync_at};
redis('SADD', 'mdm:vpp:syncnow', 'acme');
wait_for(sub { vpp_status('acme')->{last_sync_at} > $last }, 30, 'sync now');
is_deeply(redis('SMEMBERS', 'mdm:vpp:acme:asg:102'), ['NEW1'], 'a delta brought the new assignment');
is(redis('SCARD', 'mdm:vpp:acme:asg:361309726'), 450, 'the others are still there');
my @log = grep { m{/assignments} } map { decode_json($_)->{path} } split /\n/, `cat $vpp->{log}`;
like($log[-1], qr/sinceVersionId=\d+/, "asked with sinceVersionId ($log[-1])");

# --- remove -------------------------------------------------------------

my ($rid, $ruuid) = vpp_install('acme', action => 'remove', adam => '361309726',
                                devs => [['SER0001', 'DEV1'], ['SER0002', undef]]);
wait_for(sub { (redis('HGET', "mdm:vpp:install:$rid", 'state') // '') eq 'done' }, 30, 'remove done');
is_deeply(redis('LRANGE', 'mdm:q:{DEV1}', 0, -1), [$uuid, $ruuid], 'RemoveApplication queued');
is(redis('SISMEMBER', 'mdm:vpp:acme:asg:361309726', 'SER0001'), 0, 'license gone from asg');
is(scalar @{ vpp_stats($vpp)->{locations}{'Main St'}{assignments}{361309726} }, 448,
   'disassociated at Apple');
is(decode_json(redis('HGET', "mdm:vpp:install:$rid:dev", 'SER0002'))->{state}, 'disassociated',
   'a device without enrollment: disassociated');

# --- a full walk: what Apple no longer lists goes ------------------------

vpp_ctl($vpp, 'assign', { location => 'Main St', adamId => '361309726', remove => 1,
                          serials => [map { sprintf('SER%04d', $_) } 3 .. 10] });
vpp_ctl($vpp, 'assign', { location => 'Main St', adamId => '101', remove => 1,
                          serials => [qw(OLD1 OLD2 OLD3)] });
redis('SET', 'mdm:vpp:acme:new:asg:999', 'left by a walk cut off');
redis('SADD', 'mdm:vpp:acme:new:adams', '999');
$r = vpp_job_wait(vpp_job('acme', 'sync'));
is($r->{status}, 200, 'sync job (a full walk): 200');
is(redis('SCARD', 'mdm:vpp:acme:asg:361309726'), 440, 'asg: 448 - 8 taken away at Apple');
is(redis('EXISTS', 'mdm:vpp:acme:sasg:SER0005'), 0, 'their sasg: sets gone');
is(redis('EXISTS', 'mdm:vpp:acme:asg:101'), 0, 'an app with no license left: its set gone');
is(redis('SISMEMBER', 'mdm:vpp:acme:adams', '101'), 0, 'and out of the index');
is(redis('SCARD', 'mdm:vpp:acme:serials'), 441, 'index of serials: 440 + NEW1');
is(redis('EXISTS', 'mdm:vpp:acme:new:asg:999'), 0, 'what a walk cut off left is cleared');
is_deeply([grep { /:(new|idx):/ } @{ redis('KEYS', 'mdm:vpp:acme:*') }], [], 'nothing left aside');
is(vpp_status('acme')->{assignments}, 441, 'status: assignments 441');

is(stop_worker($w), 0, 'worker exits 0');
done_testing;
