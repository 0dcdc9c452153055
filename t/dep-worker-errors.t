# mdm-worker's DEP client: errors from Apple (the DEP mock injects them).
#   401 and 403 FORBIDDEN: a new session and one replay; a second 401 backs off
#   429 and 503: Retry-After honoured; 500: exponential backoff
#   403 T_C_NOT_SIGNED / ACCESS_DENIED, an expired token: the name stops
#   (status stopped=1, stop_reason, dep.error event) until a token PUT (D1)
#   a token expiring within 30 days: a warning
#
#     prove -I. -I t/lib t/dep-worker-errors.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMDep;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);

redis_flush();

sub status { my %h = @{ redis('HGETALL', "mdm:dep:$_[0]:status") }; \%h }

sub synced {
    my ($name, $after, $what, $secs) = @_;
    wait_for(sub { my $s = status($name);
                   ($s->{phase} // '') eq 'idle' && ($s->{last_sync_at} // 0) > $after },
             $secs // 30, $what);
    return status($name)->{last_sync_at};
}

sub sync_now { redis('SADD', 'mdm:dep:syncnow', $_[0]) }

sub calls { dep_stats($_[0])->{calls}{$_[1]} // 0 }

sub times_of { @{ dep_stats($_[0])->{times}{$_[1]} // [] } }

# what the module does on a token PUT (D1)
sub token_put {
    my ($name, $srv, %opt) = @_;
    dep_name($name, $srv, %opt);
    redis('DEL', "mdm:dep:$name:session");
    redis('HDEL', "mdm:dep:$name:status", 'stopped', 'stop_reason');
    redis('SADD', 'mdm:dep:syncnow', $name);
}

my $dep = start_dep();
dep_ctl($dep, 'devices', { add => 20 });
dep_name('e', $dep, profile => 'P');
my $w = start_worker(worker_id => 'de', repush_interval => 0, dep_backoff_ms => 1000,
                     dep_backoff_max => 4);
my $last = synced('e', 0, 'first fetch');
is(calls($dep, '/session'), 1, 'one session');

# --- 401: re-auth and replay once ------------------------------------------

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 401, body => 'UNAUTHORIZED' });
sync_now('e');
$last = synced('e', $last, 'sync after a 401');
is(calls($dep, '/session'), 1, '401: one new session');
is(calls($dep, '/devices/sync'), 2, '401: the call replayed once');
is(status('e')->{last_result}, 'ok', 'and the sync succeeded');

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 403, body => '"FORBIDDEN"' });
sync_now('e');
$last = synced('e', $last, 'sync after a 403 FORBIDDEN');
is(calls($dep, '/session'), 1, '403 FORBIDDEN: one new session');
is(calls($dep, '/devices/sync'), 2, '403 FORBIDDEN: replayed once');

# the simulator after a restart: every session unknown, 403 FORBIDDEN
dep_ctl($dep, 'reset');
dep_ctl($dep, 'sessions', { expire => 1, unknown_session => 403 });
sync_now('e');
$last = synced('e', $last, 'sync with sessions forgotten');
is(calls($dep, '/session'), 1, 'forgotten session: re-authenticated');
dep_ctl($dep, 'sessions', { unknown_session => 401 });

# a second 401 after the replay: no loop, backoff
dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 401, count => 2 });
sync_now('e');
$last = synced('e', $last, 'sync after two 401s');
my @t = times_of($dep, '/devices/sync');
is(scalar @t, 3, 'two 401s: the replay, then one more call after a backoff');
ok($t[2] - $t[1] >= 0.9, sprintf('backoff after the failed replay (%.2fs)', $t[2] - $t[1]));
is(calls($dep, '/session'), 1, 'one re-auth only (no replay loop)');

# --- 429 / 503 with Retry-After, 500 with backoff -------------------------

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 429, body => 'TOO_MANY',
                          headers => { 'Retry-After' => '2' } });
sync_now('e');
$last = synced('e', $last, 'sync after 429');
@t = times_of($dep, '/devices/sync');
ok($t[1] - $t[0] >= 1.95 && $t[1] - $t[0] < 3.5, sprintf('429: Retry-After 2 honoured (%.2fs)', $t[1] - $t[0]));
like(status('e')->{last_error}, qr/HTTP 429/, 'last_error recorded');

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 503,
                          headers => { 'Retry-After' => '3' } });
sync_now('e');
$last = synced('e', $last, 'sync after 503');
@t = times_of($dep, '/devices/sync');
ok($t[1] - $t[0] >= 2.95 && $t[1] - $t[0] < 4.5, sprintf('503: Retry-After 3 honoured (%.2fs)', $t[1] - $t[0]));

dep_ctl($dep, 'reset');
dep_ctl($dep, 'inject', { path => '/devices/sync', status => 500, count => 3 });
sync_now('e');
$last = synced('e', $last, 'sync after three 500s', 40);
@t = times_of($dep, '/devices/sync');
my @g = map { $t[$_] - $t[$_ - 1] } 1 .. 3;
ok($g[0] >= 0.9 && $g[1] >= 1.9 && $g[2] >= 3.9 && $g[2] < 6,
   sprintf('500: exponential backoff 1, 2, 4 s (%.2f %.2f %.2f)', @g));
ok(scalar(grep { $_->{type} eq 'dep.error' } map { +{ @{ $_->[1] } } }
          @{ redis('XRANGE', 'mdm:events', '-', '+') }) >= 3, 'dep.error events');

# --- stops -------------------------------------------------------------------

for my $why ('T_C_NOT_SIGNED', 'ACCESS_DENIED') {
    dep_ctl($dep, 'reset');
    dep_ctl($dep, 'inject', { path => '/devices/sync', status => 403, body => "\"$why\"" });
    sync_now('e');
    wait_for(sub { (status('e')->{stopped} // '') eq '1' }, 10, "stopped on $why");
    like(status('e')->{stop_reason}, qr/$why/, "$why: stop_reason");
    my ($ev) = grep { $_->{type} eq 'dep.error' && $_->{stopped} eq '1' }
               map { +{ @{ $_->[1] } } } @{ redis('XREVRANGE', 'mdm:events', '+', '-', 'COUNT', 5) };
    ok($ev && $ev->{error} =~ /$why/, "$why: dep.error event with stopped=1");
    like(worker_log($w), qr/dep e: stopped: .*$why/, "$why: logged");
    sync_now('e');
    sleep 1.5;
    is(calls($dep, '/devices/sync'), 1, "$why: no more calls while stopped, even on sync-now");

    token_put('e', $dep, profile => 'P');
    $last = synced('e', $last, "$why: a token PUT resumes");
    is(status('e')->{stopped} // '0', '0', "$why: resumed after the token PUT");
}

# --- stopped in the middle of a fetch: the fetch goes on after the PUT -------------

my $dm = start_dep(fetch_max => 100);
dep_ctl($dm, 'devices', { add => 1000, prefix => 'M' });
dep_ctl($dm, 'inject', { path => '/server/devices', status => 403, body => 'T_C_NOT_SIGNED', skip => 3 });
dep_name('m', $dm);
wait_for(sub { (status('m')->{stopped} // '') eq '1' }, 20, 'm stopped half way');
is(redis('ZCARD', 'mdm:dep:m:serials'), 300, 'stopped after 3 pages of 100');
token_put('m', $dm);
synced('m', 0, 'm: fetch finished after the token PUT');
is(redis('ZCARD', 'mdm:dep:m:serials'), 1000, 'all 1,000 devices: the fetch went on, not a sync');
is(dep_stats($dm)->{calls}{'/server/devices'}, 3 + 1 + 7, 'from the stored cursor: 3 + the refused + 7 pages');

# --- a wrong secret: 401 on GET /session, backoff, no stop -----------------------

dep_ctl($dep, 'reset');
{
    local $dep->{cred} = { %{ $dep->{cred} }, cs => 'CS_wrong' };
    token_put('e', $dep, profile => 'P');
}
wait_for(sub { (dep_stats($dep)->{calls}{'/session'} // 0) >= 2 }, 15, 'GET /session retried');
like(status('e')->{last_error}, qr{GET /session: HTTP 401}, 'wrong secret: the 401 of GET /session recorded');
ok(!status('e')->{stopped}, 'not a stop: retried with backoff');
ok(scalar(grep { $_ eq 'bad signature' } @{ dep_stats($dep)->{violations} }), 'the mock saw a bad signature');
my @s = times_of($dep, '/session');
ok($s[1] - $s[0] >= 0.9, sprintf('backoff between attempts (%.2fs)', $s[1] - $s[0]));
token_put('e', $dep, profile => 'P');
$last = synced('e', $last, 'the right secret: synced');

# --- token expiry -------------------------------------------------------------

dep_ctl($dep, 'reset');
token_put('e', $dep, profile => 'P', expiry => '2020-01-01T00:00:00Z');
wait_for(sub { (status('e')->{stopped} // '') eq '1' }, 10, 'stopped: token expired');
like(status('e')->{stop_reason}, qr/expired/, 'expired token: stop_reason');
is(calls($dep, '/session'), 0, 'no call with an expired token');

my $soon = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 10 * 86400));
token_put('e', $dep, profile => 'P', expiry => $soon);
$last = synced('e', $last, 'token expiring in 10 days still works');
like(worker_log($w), qr/dep e: the server token expires in (9|10) days/, 'warned 30 days ahead');

is(stop_worker($w), 0, 'clean exit');
done_testing;
