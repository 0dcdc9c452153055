# Webhook delivery does not slow down with the fleet (issue 9 #2): the
# events of 100,000 enrollments (one each, so 100,000 lanes come and go)
# reach a local receiver at 5,000 events/s or more, each once; the stream
# is trimmed behind them.  Bounded: stops after 60 s.
#
#     prove -I. -I t/lib t/webhook-scale.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMWorker;
use t::MDMWebhook;
use Time::HiRes qw(time sleep);

my %EV = (prefix => 'S', from => 1, to => 100_000, per => 1);
my $N = 100_000;
my $MIN_RATE = 5_000;

redis_flush();
is(add_events(%EV), $N, "$N events of $N enrollments in mdm:events");

my $r = fast_receiver();
my $t0 = time;
my $w = start_worker(webhook_url => $r->{url}, repush_interval => 0,
                     worker_id => 'ws');
my $rss0 = rss_kb($w->{pid});

my ($n, $t1) = (0, undef);
while (time < $t0 + 60) {
    $n = receiver_count($r);
    last if $n >= $N;
    sleep 0.05;
}
$t1 = time;
my $cpu = cpu_seconds($w->{pid});
my $rate = $n / ($t1 - $t0);
diag(sprintf "%d events delivered in %.2f s: %.0f events/s; worker CPU %.2f s",
     $n, $t1 - $t0, $rate, $cpu);

is($n, $N, "all delivered within 60 s");
cmp_ok($rate, '>=', $MIN_RATE, "at least $MIN_RATE events/s");

# lanes are freed once empty: 100,000 of them leave nothing behind
my $rss = rss_kb($w->{pid});
diag(sprintf "worker RSS %.1f MB at start, %.1f MB after", $rss0 / 1024, $rss / 1024);
cmp_ok($rss - $rss0, '<', 8 * 1024, "worker memory grew by less than 8 MB");

my %c = check_deliveries([ deliveries($r) ], event_uuids(%EV));
is($c{delivered}, $N, "every event delivered");
is($c{duplicates}, 0, "none twice");
is($c{missing}, 0, "none missing");

wait_for(sub { redis('XLEN', 'mdm:events') == 0 }, 10,
         "the stream trimmed behind the deliveries");
is(redis('XPENDING', 'mdm:events', 'webhooks')->[0], 0, "nothing pending");
is(stop_worker($w), 0, "clean exit");

done_testing();

sub rss_kb {
    open my $fh, '<', "/proc/$_[0]/status" or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}
