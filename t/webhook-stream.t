# The worker's side of contracts C3 and C4 (issue 9 #6, webhook part):
#   C3  while it has a webhook_url, mdm:webhooks:want says "all" (or
#       "noidle" with webhook_idle off), with a TTL its heartbeat renews;
#       absent without a webhook_url
#   C4  after acknowledging, mdm:events is trimmed up to the oldest entry
#       not yet delivered, never past it; dead letters are capped at about
#       webhook_dead_max
#
#     prove -I. -I t/lib t/webhook-stream.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use t::MDMWebhook;
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

redis_flush();
my $HOOK = start_webhook();

sub worker {
    return start_worker(worker_id => 'wt', repush_interval => 0,
                        heartbeat => 1, @_);
}

# --- C3 ---------------------------------------------------------------

my $w = worker(webhook_url => $HOOK->{hook_url});
wait_for(sub { defined redis('GET', 'mdm:webhooks:want') }, 5, "want key set");
is(redis('GET', 'mdm:webhooks:want'), 'all', "webhook_idle on (the default): all");
my $ttl = redis('PTTL', 'mdm:webhooks:want');
ok($ttl > 0 && $ttl <= 60_000, "with a TTL of max(60 s, 3 heartbeats) ($ttl ms)");
redis('DEL', 'mdm:webhooks:want');
wait_for(sub { defined redis('GET', 'mdm:webhooks:want') }, 3,
         "set again by the next heartbeat");
pass("renewed with the heartbeat");
is(stop_worker($w), 0, "clean exit");

$w = worker(webhook_url => $HOOK->{hook_url}, webhook_idle => 'off');
wait_for(sub { (redis('GET', 'mdm:webhooks:want') // '') eq 'noidle' }, 5,
         "webhook_idle off");
pass("webhook_idle off: noidle");
is(stop_worker($w), 0, "clean exit");

redis('DEL', 'mdm:webhooks:want');
$w = worker();
sleep 2.5;
is(redis('EXISTS', 'mdm:webhooks:want'), 0, "no webhook_url: no want key");
is(stop_worker($w), 0, "clean exit");

$w = worker(webhook_url => $HOOK->{hook_url}, webhook_idle => 'maybe');
wait_for(sub { defined kill_or_status($w) }, 5, "a bad webhook_idle stops it");
isnt($w->{status}, 0, "webhook_idle maybe: refused");
like(worker_log($w), qr/webhook_idle must be "on" or "off"/, "... and said why");

sub kill_or_status {
    my ($w) = @_;
    return $w->{status} if exists $w->{status};
    if (waitpid($w->{pid}, POSIX::WNOHANG()) == $w->{pid}) {
        $w->{status} = $? >> 8;
    }
    return $w->{status};
}

# --- C4: trimming -------------------------------------------------------

redis('DEL', 'mdm:events');
$w = worker(webhook_url => $HOOK->{hook_url}, webhook_backoff_ms => 3000);
is(add_events(prefix => 'T', from => 1, to => 200), 200, "200 events");
wait_for(sub { webhook_requests($HOOK) >= 200 }, 20, "200 delivered");
wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 5, "stream empty");
pass("delivered entries trimmed: the stream is empty");

# the first request fails: that event waits 3 s while the others go out
webhook_clear($HOOK);
webhook_rules($HOOK, { sequence => [ 500 ] });
add_events(prefix => 'U', from => 1, to => 50);
wait_for(sub { (grep { $_->{status} == 200 } webhook_requests($HOOK)) >= 49 }, 10,
         "49 delivered");
my ($failed) = grep { $_->{status} == 500 } webhook_requests($HOOK);
my $fid = decode_json($failed->{body})->{event_id};
sleep 0.3;
my $held = redis('XRANGE', 'mdm:events', $fid, $fid);
is(scalar @$held, 1, "the undelivered entry is still in the stream");
is(redis('XRANGE', 'mdm:events', '-', '+', 'COUNT', 1)->[0][0], $fid,
   "trimmed up to it, not past it");
wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 10,
         "trimmed once it is delivered");
pass("delivered after its retry, then trimmed");
is(stop_worker($w), 0, "clean exit");

# receiver down: nothing trimmed however long it lasts
my $port = free_port();
$w = worker(webhook_url => "http://127.0.0.1:$port/hook", webhook_backoff_ms => 100,
            webhook_retries => 1000);
add_events(prefix => 'V', from => 1, to => 30);
sleep 3;
is(redis('XLEN', 'mdm:events'), 30, "receiver down: all 30 kept");
my $r = fast_receiver(port => $port);
wait_for(sub { receiver_count($r) >= 30 }, 20, "delivered once it is up");
wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 5, "then trimmed");
pass("receiver back: delivered and trimmed");
is(stop_worker($w), 0, "clean exit");

# --- C4: dead letters capped -------------------------------------------

redis('DEL', 'mdm:webhooks:dead');
redis('EVAL', q{for i = 1, 250 do redis.call('XADD', KEYS[1], '*', 'event_id',
    '0-' .. i, 'error', 'old', 'type', 'Idle') end}, 1, 'mdm:webhooks:dead');
webhook_rules($HOOK, { status => 500 });
$w = worker(webhook_url => $HOOK->{hook_url}, webhook_retries => 1,
            webhook_dead_max => 10);
my $id = redis('XADD', 'mdm:events', '*', type => 'Connect', id => 'D1',
               enrollment_type => 'Device', device_id => 'D1', time => 1,
               params => '', status => 'Idle', command_uuid => '', body => 'b');
wait_for(sub { my $d = redis('XREVRANGE', 'mdm:webhooks:dead', '+', '-', 'COUNT', 1);
               @$d && { @{ $d->[0][1] } }->{event_id} eq $id }, 10, "dead letter");
my $n = redis('XLEN', 'mdm:webhooks:dead');
diag("mdm:webhooks:dead: $n entries after a dead letter with webhook_dead_max 10 (251 before trimming)");
cmp_ok($n, '<=', 110, "capped at about webhook_dead_max (MAXLEN ~)");
cmp_ok($n, '>=', 10, "... and not below it");
is(stop_worker($w), 0, "clean exit");

done_testing();
