# mdm-worker's side of contract D4 (the admin API's DEP calls go through
# the worker) and D5 (DEP events reach the webhook).
#   jobs from mdm:dep:proxy run in the name's lane with its session
#   (re-auth and replay included) and answer mdm:dep:proxy:reply:ID
#   (EX 120): Apple's status, body, content type; status 0 + error for
#   ours; jobs past their deadline are dropped
#   dep.device.* and dep.sync events are POSTed to webhook_url
#
#     prove -I. -I t/lib t/dep-worker-proxy.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time sleep);

redis_flush();

my $Seq = 0;
sub job {
    my (%j) = @_;
    my $id = sprintf '%032x', ++$Seq;
    redis('RPUSH', 'mdm:dep:proxy', encode_json({ id => $id, name => 'px', method => 'GET',
        body => '', deadline => int(time * 1000) + 10_000, %j }));
    return $id;
}

sub reply {
    my ($id, $secs) = @_;
    my $r;
    eval { wait_for(sub { $r = redis('GET', "mdm:dep:proxy:reply:$id") }, $secs // 10, "reply $id") };
    return $r ? decode_json($r) : undef;
}

my $dep = start_dep();
my $hook = start_webhook();
dep_ctl($dep, 'devices', { add => 3 });
dep_name('px', $dep, profile => 'PP');
my $w = start_worker(worker_id => 'dp', repush_interval => 0, webhook_url => $hook->{hook_url});

my $r = reply(job(path => '/account'));
is($r->{status}, 200, 'GET /account: 200');
is(decode_json($r->{body})->{server_name}, 'mock', 'with Apple\'s body');
like($r->{content_type}, qr{^application/json}, 'and content type');
ok(!exists $r->{error}, 'no error');
my $ttl = redis('TTL', 'mdm:dep:proxy:reply:' . sprintf('%032x', $Seq));
ok($ttl > 0 && $ttl <= 120, "reply kept 120 s at most ($ttl)");

$r = reply(job(method => 'POST', path => '/profile',
               body => encode_json({ profile_name => 'P1', url => 'https://mdm.example.com/enroll' })));
is($r->{status}, 200, 'POST /profile: 200');
my $uuid = decode_json($r->{body})->{profile_uuid};
ok($uuid, "profile defined ($uuid)");
$r = reply(job(path => "/profile?profile_uuid=$uuid"));
is(decode_json($r->{body})->{profile_name}, 'P1', 'GET /profile?profile_uuid=: the query goes through');

$r = reply(job(path => '/nope'));
is($r->{status}, 404, 'Apple\'s 404 passed through');

dep_ctl($dep, 'inject', { path => '/account', status => 401 });
my $before = dep_stats($dep)->{calls}{'/session'};
$r = reply(job(path => '/account'));
is($r->{status}, 200, 'a 401: new session, replayed, 200');
is(dep_stats($dep)->{calls}{'/session'}, $before + 1, 'one re-auth');

dep_ctl($dep, 'inject', { path => '/devices/disown', status => 403, body => 'ACCESS_DENIED' });
$r = reply(job(method => 'POST', path => '/devices/disown', body => '{"devices":["S0000001"]}'));
is($r->{status}, 403, 'ACCESS_DENIED on a proxied call: passed through');
ok(!redis('HGET', 'mdm:dep:px:status', 'stopped'), 'and the name is not stopped');

# past the deadline: dropped unanswered
my $late = job(path => '/account', deadline => int(time * 1000) - 1);
$r = reply(job(path => '/account'));
is($r->{status}, 200, 'the next job answered');
ok(!defined redis('GET', "mdm:dep:proxy:reply:$late"), 'a job past its deadline: no reply');
like(worker_log($w), qr/proxy job $late past its deadline/, 'logged');

# ours: status 0 with an error
$r = reply(job(name => 'unknown', path => '/account'));
is($r->{status}, 0, 'a name without tokens: status 0');
like($r->{error}, qr/no usable tokens/, 'with an error');
$r = reply(job(name => 'bad name!', path => '/account'));
is($r->{status}, 0, 'an invalid name: status 0');
redis('RPUSH', 'mdm:dep:proxy', 'not json');
my $id = job(path => 'no-slash');
$r = reply($id);
like($r->{error}, qr/invalid proxy job/, 'a path without "/": refused');
like(worker_log($w), qr/proxy job dropped, not a job: not json/, 'not JSON: dropped and logged');

redis('HSET', 'mdm:dep:px:status', 'stopped', '1', 'stop_reason', 'T_C_NOT_SIGNED');
sleep 0.5;
$r = reply(job(path => '/account'));
like($r->{error}, qr/stopped/, 'a stopped name: status 0, error');
redis('HDEL', 'mdm:dep:px:status', 'stopped', 'stop_reason');

# a name backing off (Retry-After) answers at once, not after the wait
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 503, headers => { 'Retry-After' => '30' } });
redis('SADD', 'mdm:dep:syncnow', 'px');
wait_for(sub { (redis('HGET', 'mdm:dep:px:status', 'last_error') // '') =~ /503/ }, 10, 'a 503');
my $t0 = time;
$r = reply(job(path => '/account'));
like($r->{error}, qr/waiting after an error/, 'a job during a Retry-After wait: status 0 at once');
ok(time - $t0 < 2, 'answered at once');

# many at once: answered in order, one at a time
is(stop_worker($w), 0, 'clean exit');
$w = start_worker(worker_id => 'dp', repush_interval => 0, webhook_url => $hook->{hook_url});
my @ids = map { job(path => '/account') } 1 .. 30;
my @r = map { reply($_) } @ids;
is(scalar(grep { $_ && $_->{status} == 200 } @r), 30, '30 jobs at once: all answered');

# --- D5: DEP events to the webhook ---------------------------------------------

my @hooks;
wait_for(sub { @hooks = map { decode_json($_->{body}) } webhook_requests($hook);
               grep { $_->{topic} eq 'dep.sync' } @hooks }, 20, 'dep.sync delivered');
my ($added) = grep { $_->{topic} eq 'dep.device.added' } @hooks;
ok($added, 'dep.device.added delivered');
is($added->{dep_event}{dep_name}, 'px', 'with dep_name');
like($added->{dep_event}{serial}, qr/^S\d+$/, 'with serial');
like($added->{created_at}, qr/^\d{4}-\d\d-\d\dT/, 'created_at');
ok($added->{event_id}, 'event_id');
my ($sync) = grep { $_->{topic} eq 'dep.sync' } @hooks;
is($sync->{dep_event}{added}, 3, 'dep.sync: 3 added');
is($sync->{dep_event}{devices}, 3, 'dep.sync: 3 devices');

is(stop_worker($w), 0, 'clean exit');
done_testing;
