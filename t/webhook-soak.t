# Webhook soak (issue 9, "Tests must show"): 2,000 enrollments, 20,000
# events, two workers, the receiver down while the events come in, then
# up.  While it is down the workers' CPU stays low; once it is up every
# event is delivered exactly once, in order per enrollment, and the stream
# is trimmed to nothing.  Bounded: 60 s for the deliveries.
#
#     prove -I. -I t/lib t/webhook-soak.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMWorker;
use t::MDMWebhook;
use Time::HiRes qw(time sleep);

my %EV = (prefix => 'K', from => 1, to => 2000, per => 10);
my $N = 20_000;
my $PORT = free_port();        # the receiver is down: nothing listens

redis_flush();

my @W = map {
    start_worker(webhook_url => "http://127.0.0.1:$PORT/hook", worker_id => $_,
                 webhook_backoff_ms => 100, webhook_retries => 1_000_000,
                 heartbeat => 1, repush_interval => 0)
} qw(soak-a soak-b);

# the events arrive over ~5 s, one per enrollment at a time
my @cpu0 = map { cpu_seconds($_->{pid}) } @W;
my ($c0, $t0) = (redis_calls(), time);
my $added = 0;
for my $k (1 .. 10) {
    $added += add_events(%EV, per => 1, start => $k);
    sleep 0.5;
}
my ($c1, $t1) = (redis_calls(), time);
my @cpu = map { cpu_seconds($W[$_]{pid}) - $cpu0[$_] } 0 .. 1;
my $calls = 0;
$calls += $c1->{$_} - ($c0->{$_} // 0) for grep { !/^(xadd|eval)$/ } keys %$c1;
is($added, $N, "$N events for 2,000 enrollments added while the receiver is down");
diag(sprintf "receiver down %.1f s: worker CPU %.2f s and %.2f s (%.1f%%, %.1f%%); "
     . "%d Redis calls besides the test's XADDs", $t1 - $t0, @cpu,
     map({ 100 * $_ / ($t1 - $t0) } @cpu), $calls);
cmp_ok($_, '<', 0.03 * ($t1 - $t0), "worker CPU under 3% while the receiver is down")
    for @cpu;
is(redis('XLEN', 'mdm:events'), $N, "nothing dropped from the stream");

my $r = fast_receiver(port => $PORT);
my $up = time;
my $n = 0;
while (time < $up + 60) {
    $n = receiver_count($r);
    last if $n >= $N;
    sleep 0.05;
}
my $dt = time - $up;
diag(sprintf "receiver up: %d events in %.1f s (%.0f events/s, including the "
     . "wait for the next probe)", $n, $dt, $n / $dt);
is($n, $N, "all delivered within 60 s");
sleep 1;    # anything sent twice would come now

my %c = check_deliveries([ deliveries($r) ], event_uuids(%EV));
is($c{delivered}, $N, "every event delivered");
is($c{duplicates}, 0, "exactly once");
is($c{missing}, 0, "none missing");
is($c{out_of_order}, 0, "in order per enrollment");
is($c{unexpected}, 0, "nothing else");

wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 10, "stream trimmed");
is(redis('XPENDING', 'mdm:events', 'webhooks')->[0], 0, "nothing pending");
is(stop_worker($_), 0, "clean exit") for @W;

done_testing();
