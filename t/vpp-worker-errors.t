# mdm-worker's VPP client when Apple says no (issue 17, V4/V5): 429 and
# 9646 and 5xx back off (Retry-After when given), an HTTP 200 whose body is
# an error is that error, 9625/9621/9722 and a bare 401 stop the location
# until a "token" job (installs meanwhile fail with the reason), events that
# fail whole or stay pending, another MDM taking the location, the token
# expiry warning once a day, sync jobs and notifications subscribed (Apple's
# TEST_NOTIFICATION answered, or the token refused when it is not).
#
#     prove -I. -I t/lib t/vpp-worker-errors.t

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
vpp_ctl($vpp, 'assets', { location => 'L1', assets => [{ adamId => '1', total => 1000 },
                                                        { adamId => '2', total => 1000 }] });
vpp_ctl($vpp, 'config', { maxSerialNumbers => 10, event_delay => 0.2 });
my $sink = "$vpp->{url}/_ctl/sink/acme";
vpp_config('acme', $vpp, notify_url => $sink);

my $w = start_worker(worker_id => 've', repush_interval => 0, vpp_poll_ms => 100,
                     vpp_poll_max => 1, vpp_backoff_ms => 200, vpp_backoff_max => 2);

sub calls { my $p = shift; vpp_stats($vpp)->{calls}{$p} // 0 }
sub log_times {
    my ($re) = @_;
    return map { $_->{time} } grep { $_->{path} =~ $re }
           map { decode_json($_) } split /\n/, `cat $vpp->{log}`;
}
sub sync_job { vpp_job_wait(vpp_job('acme', 'sync'), 30) }
sub devs { my ($p, $n) = @_; [map { [sprintf("$p%03d", $_), undef] } 1 .. $n] }
sub install_done {
    my ($iid) = @_;
    wait_for(sub { (redis('HGET', "mdm:vpp:install:$iid", 'state') // '') =~ /^(done|failed)$/ },
             30, "install $iid over");
    my %h = @{ redis('HGETALL', "mdm:vpp:install:$iid") };
    return \%h;
}
sub dev { decode_json(redis('HGET', "mdm:vpp:install:$_[0]:dev", $_[1])) }

my $r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
is($r->{status}, 200, 'token: 200');
my $n = vpp_stats($vpp)->{locations}{L1}{notify};
is($n->{notificationUrl}, $sink, 'notificationUrl sent');
is_deeply($n->{notificationTypes}, ['ASSET_MANAGEMENT', 'ASSET_COUNT'], 'notificationTypes sent');
like($n->{notificationAuthToken}, qr/^[0-9a-f]{64}$/, 'a random notificationAuthToken');
is(redis('GET', 'mdm:vpp:acme:notify_token'), $n->{notificationAuthToken},
   'kept in mdm:vpp:acme:notify_token');
my ($tn) = @{ vpp_stats($vpp)->{sink} };
is($tn->{authorization}, "Bearer $n->{notificationAuthToken}", "Apple's TEST_NOTIFICATION carried that token");
is(decode_json($tn->{body})->{notificationType}, 'TEST_NOTIFICATION', 'and was a TEST_NOTIFICATION');
wait_for(sub { vpp_status('acme')->{last_sync_at} }, 30, 'first sync');

# --- sync job -----------------------------------------------------------
$r = sync_job();
is($r->{status}, 200, 'sync job: 200 when the walk is over');
ok($r->{body}{version_id}, 'with the version');

# --- 429 with Retry-After, 9646 without, 503 with ----------------------
vpp_ctl($vpp, 'reset');
vpp_ctl($vpp, 'inject', { path => '/assets', status => 429, headers => { 'Retry-After' => '1' },
                          body => '{"errorNumber":9646,"errorMessage":"Too many requests"}' });
my $t0 = time;
$r = sync_job();
is($r->{status}, 200, '429 + Retry-After: the sync still ends well');
my @t = log_times(qr{^/assets});
ok($t[-1] - $t[-2] >= 0.95, sprintf("asked again after Retry-After (%.2f s)", $t[-1] - $t[-2]));
my @e = grep { ($_->{error_number} // '') eq '9646' } vpp_events('vpp.error');
is(scalar @e, 1, 'one vpp.error event with 9646');
is($e[0]{stopped}, 0, 'not stopped');

vpp_ctl($vpp, 'inject', { path => '/assignments', status => 503, headers => { 'Retry-After' => '1' },
                          body => 'busy' });
$r = sync_job();
is($r->{status}, 200, '503 + Retry-After: the sync ends well');
@t = log_times(qr{^/assignments});
ok($t[-1] - $t[-2] >= 0.95, sprintf('asked again after Retry-After (%.2f s)', $t[-1] - $t[-2]));

vpp_ctl($vpp, 'inject', { path => '/assignments', status => 500, count => 3 });
$r = sync_job();
is($r->{status}, 200, '500 x 3 without Retry-After: backed off and done');
@t = log_times(qr{^/assignments});
ok($t[-1] - $t[-4] >= 0.2 + 0.4 + 0.8 - 0.1, sprintf('exponential backoff (%.2f s for 3)', $t[-1] - $t[-4]));

# --- a 200 whose body is an error --------------------------------------
vpp_ctl($vpp, 'inject', { path => '/assets', status => 200,
                          body => '{"errorNumber":9602,"errorMessage":"Invalid argument"}' });
$r = sync_job();
is($r->{status}, 502, 'HTTP 200 with errorNumber 9602: the sync job fails');
like($r->{body}{error}, qr/error 9602/, 'with the error');
my $st = vpp_status('acme');
is($st->{error_number}, 9602, 'status: error_number 9602');
like($st->{last_error}, qr/HTTP 200, error 9602: Invalid argument/, 'status: last_error');
ok(!$st->{stopped}, 'not stopped');

# --- a batch refused by a 200 whose body is an error: the next goes on ---
vpp_ctl($vpp, 'inject', { path => '/assets/associate', status => 200,
                          body => '{"errorNumber":9707,"errorMessage":"Not device assignable"}' });
my ($bid) = vpp_install('acme', adam => '1', devs => devs('B', 15));
my $bh = install_done($bid);
is($bh->{state}, 'done', '200-with-error on the first batch: the install goes on');
is($bh->{failed}, 10, 'the first batch (10) failed');
is($bh->{associated}, 5, 'the second (5) associated');
is(dev($bid, 'B001')->{error_number}, 9707, 'with 9707');
like(dev($bid, 'B001')->{error}, qr/HTTP 200, error 9707/, 'and the error');
is(dev($bid, 'B011')->{state}, 'associated', 'B011 associated');

# --- events: failing whole, pending long, 429 on associate ---------------
vpp_ctl($vpp, 'config', { event_fail => 9707 });
my ($iid) = vpp_install('acme', adam => '1', devs => devs('F', 15));
my $h = install_done($iid);
is($h->{state}, 'failed', 'an event FAILED whole: the install failed');
is($h->{failed}, 15, 'every serial failed');
is(dev($iid, 'F015')->{error_number}, 9707, 'with the event\'s error number');
vpp_ctl($vpp, 'config', { event_fail => 0, event_delay => 2 });
vpp_ctl($vpp, 'reset');
vpp_ctl($vpp, 'inject', { path => '/assets/associate', status => 429, headers => { 'Retry-After' => '1' } });
($iid) = vpp_install('acme', adam => '2', devs => devs('P', 5));
$h = install_done($iid);
is($h->{state}, 'done', '429 on associate, then an event pending 2 s: done');
is($h->{associated}, 5, 'all 5 associated');
is($h->{queued}, 0, 'none queued: no enrollments');
is(dev($iid, 'P003')->{state}, 'associated', 'state associated');
is(calls('/assets/associate'), 2, 'associate asked twice (429, then ok)');
my $polls = calls('/status');
ok($polls >= 3 && $polls <= 7, "status polled with a growing delay ($polls calls in 2 s)");
vpp_ctl($vpp, 'config', { event_delay => 0.2 });

# --- a token expiring within 15 days ----------------------------------
my $soon = vpp_ctl($vpp, 'location', { name => 'L2', exp => int(time) + 10 * 86400 })->{token};
vpp_config('soon', $vpp);
$r = vpp_job_wait(vpp_job('soon', 'token', token => $soon));
is($r->{status}, 200, 'a token expiring in 10 days: accepted');
wait_for(sub { vpp_events('vpp.token') }, 10, 'the expiry warning');
my @w = vpp_events('vpp.token');
is($w[0]{vpp_name}, 'soon', 'vpp.token event for the location');
ok($w[0]{days_left} == 9 || $w[0]{days_left} == 10, "days_left ($w[0]{days_left})");
ok(abs(vpp_status('soon')->{token_expiry} - (time + 10 * 86400)) < 120, 'status token_expiry (unix s)');
vpp_job_wait(vpp_job('soon', 'sync'));
is(scalar(vpp_events('vpp.token')), 1, 'once a day only');

# --- stops ----------------------------------------------------------------
sub stops_on {
    local $SIG{__DIE__} = sub { diag(join "\n", (split /\n/, worker_log($w))[-30 .. -1]) };
    my ($what, $prepare, $num) = @_;
    my $last = vpp_status('acme')->{last_sync_at};
    $prepare->();
    redis('SADD', 'mdm:vpp:syncnow', 'acme');
    wait_for(sub { (vpp_status('acme')->{stopped} // '') eq '1' }, 30, "$what stops");
    my $s = vpp_status('acme');
    like($s->{stop_reason}, $num ? qr/error $num/ : qr/HTTP 401/, "$what: stop_reason");
    is($s->{error_number}, $num // '', "$what: error_number") if $num;
    my $c = vpp_stats($vpp)->{calls};
    my $before = 0; $before += $_ for values %$c;
    redis('SADD', 'mdm:vpp:syncnow', 'acme');
    my ($iid) = vpp_install('acme', adam => '1', devs => devs('S', 3));
    my $h = install_done($iid);
    is($h->{state}, 'failed', "$what: an install meanwhile fails");
    like(dev($iid, 'S001')->{error}, qr/stopped/, "$what: with the reason");
    is(vpp_job_wait(vpp_job('acme', 'sync'))->{status}, 409, "$what: a sync job: 409");
    sleep 1;
    $c = vpp_stats($vpp)->{calls};
    my $after = 0; $after += $_ for values %$c;
    is($after, $before, "$what: no call to Apple while stopped");
    my @e = grep { $_->{stopped} eq '1' } vpp_events('vpp.error');
    like($e[-1]{error}, $num ? qr/error $num/ : qr/401/, "$what: a vpp.error event, stopped 1");
    vpp_ctl($vpp, 'token', { token => $tok, state => 'ok' });
    my $r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
    is($r->{status}, 200, "$what: the token job starts it again");
    ok(!defined vpp_status('acme')->{stopped}, "$what: stopped cleared");
    wait_for(sub { vpp_status('acme')->{last_sync_at} > $last }, 30, "$what: syncing again");
}

stops_on('revoked (9625)', sub { vpp_ctl($vpp, 'token', { token => $tok, state => 'revoked' }) }, 9625);
stops_on('expired (9621)', sub { vpp_ctl($vpp, 'token', { token => $tok, state => 'expired' }) }, 9621);
stops_on('9722 in a 200', sub { vpp_ctl($vpp, 'inject', { path => '/assets', status => 200,
    body => '{"errorNumber":9722,"errorMessage":"bad"}' }) }, 9722);
stops_on('a bare 401', sub { vpp_ctl($vpp, 'inject', { path => '/assets', status => 401, body => '' }) });

# another MDM takes the location: seen at the next /client/config (hourly,
# or now for a sync job)
vpp_ctl($vpp, 'location', { name => 'L1', mdm => { id => 'THIEF', name => 'other' } });
is(vpp_job_wait(vpp_job('acme', 'sync'))->{status}, 502, 'a sync job: 502');
wait_for(sub { (vpp_status('acme')->{stopped} // '') eq '1' }, 30, 'another MDM: stopped');
like(vpp_status('acme')->{stop_reason}, qr/managed by another MDM \(mdmInfo id THIEF\)/,
     'stop_reason names the other MDM');
$r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
is($r->{status}, 409, 'the token again without force: 409');
$r = vpp_job_wait(vpp_job('acme', 'token', token => $tok, force => JSON::PP::true));
is($r->{status}, 200, 'with force: 200');
is(vpp_stats($vpp)->{locations}{L1}{mdm}{id}, redis('HGET', 'mdm:vpp:mdminfo', 'id'), 'ours again');

# a notification URL Apple cannot deliver its TEST_NOTIFICATION to: the
# client config is refused, and so is the token, with Apple's error
my $dead = "http://127.0.0.1:" . t::MDM::_pick_port() . "/vpp/notify/acme";
vpp_config('acme', $vpp, notify_url => $dead);
$r = vpp_job_wait(vpp_job('acme', 'token', token => $tok));
is($r->{status}, 422, 'an unreachable notification URL: the token job 422');
like($r->{body}{error}, qr/test notification/, "with Apple's message");
is_deeply([ map { $_->{status} } grep { $_->{url} eq $dead } @{ vpp_stats($vpp)->{test_notifications} } ],
          [ 599 ], 'Apple tried it once');
is(vpp_stats($vpp)->{locations}{L1}{notify}{notificationUrl}, $sink, 'the config Apple keeps is the old one');
vpp_config('acme', $vpp, notify_url => $sink);
is(vpp_job_wait(vpp_job('acme', 'token', token => $tok))->{status}, 200, 'a good URL again: 200');

is_deeply(vpp_stats($vpp)->{violations}, [], 'no call the mock refused as malformed');
is(stop_worker($w), 0, 'worker exits 0');
done_testing;
