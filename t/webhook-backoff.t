# Webhook delivery while the receiver is down (issue 9 #1): the worker does
# not re-read its own pending entries in a loop, after a restart or a Redis
# reconnect alike; its Redis calls and CPU time stay low for as long as the
# outage lasts, and everything goes out, once and in order, when the
# receiver is back.  Probes that cannot reach it cost no attempts.
#
#     prove -I. -I t/lib t/webhook-backoff.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMWorker;
use t::MDMWebhook;
use Time::HiRes qw(time sleep);

my $PORT = free_port();               # nothing listens there yet
my %EV = (prefix => 'B', from => 1, to => 20, per => 5);
my $N = 100;

redis_flush();

sub worker {
    return start_worker(webhook_url => "http://127.0.0.1:$PORT/hook",
                        webhook_backoff_ms => 200, webhook_retries => 1000,
                        repush_interval => 0, worker_id => 'wb', @_);
}

# (undef until the worker has created the group)
sub pending { my $p = redis_try('XPENDING', 'mdm:events', 'webhooks'); ref $p eq 'ARRAY' ? $p->[0] : undef }

# Redis calls and worker CPU over SECONDS of outage
sub outage_cost {
    my ($w, $seconds, $what) = @_;
    my ($c0, $cpu0, $t0) = (redis_calls(), cpu_seconds($w->{pid}), time);
    sleep $seconds;
    my ($c1, $cpu1, $t1) = (redis_calls(), cpu_seconds($w->{pid}), time);
    my $total = 0;
    $total += $c1->{$_} - ($c0->{$_} // 0) for keys %$c1;
    my $xread = ($c1->{xreadgroup} // 0) - ($c0->{xreadgroup} // 0);
    my $cpu = $cpu1 - $cpu0;
    diag(sprintf "%s: %.1f s of outage: %d XREADGROUP, %d Redis calls in all,"
         . " worker CPU %.2f s (%.1f%%)", $what, $t1 - $t0, $xread, $total,
         $cpu, 100 * $cpu / ($t1 - $t0));
    return ($xread, $total, $cpu);
}

is(add_events(%EV), $N, "$N events for 20 enrollments in mdm:events");

# a first run reads them all, fails to deliver and is stopped: its entries
# stay pending for it
my $w = worker();
wait_for(sub { (pending() // 0) == $N }, 10, "all $N read by the worker");
is(stop_worker($w), 0, "first run: clean exit, entries left pending");

$w = worker();
sleep 0.5;
my ($xread, $total, $cpu) = outage_cost($w, 3, "after a restart");
cmp_ok($xread, '<', 20, "restart: XREADGROUP calls stay few");
cmp_ok($total, '<', 300, "restart: Redis calls stay few");
cmp_ok($cpu, '<', 0.3, "restart: worker CPU stays under 10%");

# a reconnect (Redis drops the worker's connections) is the same
redis('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
sleep 0.5;
($xread, $total, $cpu) = outage_cost($w, 3, "after a reconnect");
cmp_ok($xread, '<', 20, "reconnect: XREADGROUP calls stay few");
cmp_ok($total, '<', 300, "reconnect: Redis calls stay few");
cmp_ok($cpu, '<', 0.3, "reconnect: worker CPU stays under 10%");

is(pending(), $N, "nothing lost, nothing acknowledged while down");

my $r = fast_receiver(port => $PORT);
my $t0 = time;
wait_for(sub { receiver_count($r) >= $N }, 30, "all $N delivered");
diag(sprintf "delivered %.1f s after the receiver came back", time - $t0);
sleep 0.3;
my @D = deliveries($r);
my %c = check_deliveries(\@D, event_uuids(%EV));
is($c{delivered}, $N, "every event delivered");
is($c{duplicates}, 0, "none twice");
is($c{out_of_order}, 0, "in order per enrollment");
wait_for(sub { pending() == 0 }, 10, "all acknowledged");
is(stop_worker($w), 0, "clean exit");

# probes that cannot reach the receiver do not count as attempts: an
# outage, however long, sends no event to the dead letters
receiver_stop($r);
redis('DEL', 'mdm:webhooks:dead');
$w = worker(webhook_retries => 2, webhook_backoff_ms => 100, worker_id => 'wb2');
my %EV2 = (prefix => 'R', from => 1, to => 3, per => 2);   # 3 lanes
add_events(%EV2);
sleep 4;
is(redis('XLEN', 'mdm:webhooks:dead'), 0,
   "webhook_retries 2, 4 s of outage (several probes): no dead letter");
$r = fast_receiver(port => $PORT);
wait_for(sub { receiver_count($r) >= 6 }, 30, "the 6 delivered");
%c = check_deliveries([ deliveries($r) ], event_uuids(%EV2));
is($c{delivered}, 6, "all delivered once the receiver is back");
is(stop_worker($w), 0, "clean exit");

done_testing();
