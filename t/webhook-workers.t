# Webhooks with two workers (issue 9 #12): a worker whose deliveries are in
# backoff still owns its entries; the other never takes them over (no
# duplicates, an enrollment's events in order).  Only a dead worker's
# entries (its heartbeat key expired) are taken over, and then delivered
# once, in order.
#
#     prove -I. -I t/lib t/webhook-workers.t

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

my $HOOK = start_webhook(rules => { status => 503 });

sub worker {
    my ($id) = @_;
    return start_worker(webhook_url => $HOOK->{hook_url}, worker_id => $id,
                        webhook_claim_ms => 300, webhook_backoff_ms => 100,
                        webhook_retries => 1000, heartbeat => 1,
                        repush_interval => 0);
}

# pending entries per consumer
sub held {
    my $p = redis_try('XPENDING', 'mdm:events', 'webhooks');
    return {} unless ref $p eq 'ARRAY';    # no group yet
    return { map { $_->[0] => $_->[1] } @{ $p->[3] || [] } };
}

# [udid, command_uuid] of what the receiver accepted (200), in order
sub accepted {
    return map {
        my $j = decode_json($_->{body});
        [ $j->{acknowledge_event}{udid}, $j->{acknowledge_event}{command_uuid} ]
    } grep { $_->{status} == 200 } webhook_requests($HOOK);
}

my %EV1 = (prefix => 'W', from => 1, to => 10, per => 5);
is(add_events(%EV1), 50, "50 events of 10 enrollments");

my $A = worker('wa');
wait_for(sub { (held()->{wa} // 0) == 50 }, 10, "worker wa holds all 50");
my $B = worker('wb');

# wa's entries sit idle in Redis far longer than webhook_claim_ms while
# its deliveries back off: wb must leave them alone
sleep 3;
my $h = held();
is($h->{wa}, 50, "wa, in backoff, still holds its 50 entries");
ok(!$h->{wb}, "wb took none of them");

# even the lease holder leaves a live worker's entries alone: hand the
# lease to wb while wa, alive, holds everything in backoff
redis('SET', 'mdm:webhooks:leader', 'wb', 'PX', 3000);
sleep 3;
$h = held();
is($h->{wa}, 50, "wb holds the lease: wa, alive, still holds its 50 entries");
ok(!$h->{wb}, "wb took none of them");
like(worker_log($B), qr/delivering webhooks: this worker holds/, "wb took the lease");

webhook_rules($HOOK, { status => 200 });
wait_for(sub { accepted() >= 50 }, 30, "50 delivered");
sleep 1;    # anything delivered twice would come now
my %c = check_deliveries([ accepted() ], event_uuids(%EV1));
is($c{delivered}, 50, "every event delivered");
is($c{duplicates}, 0, "none twice");
is($c{out_of_order}, 0, "in order per enrollment");

# the worker that holds entries dies: they are taken over once its
# heartbeat has expired, and delivered once, in order
webhook_clear($HOOK);
webhook_rules($HOOK, { status => 503 });
my %EV2 = (prefix => 'X', from => 1, to => 10, per => 5);
add_events(%EV2);
wait_for(sub { grep { (held()->{$_} // 0) == 50 } qw(wa wb) }, 10,
         "one worker holds the 50 new entries");
my ($holder) = grep { (held()->{$_} // 0) == 50 } qw(wa wb);
my ($dead, $alive) = $holder eq 'wa' ? ($A, $B) : ($B, $A);
kill_worker($dead);
my $t0 = time;
wait_for(sub { my $x = held(); !$x->{$holder} && ($x->{ $holder eq 'wa' ? 'wb' : 'wa' } // 0) == 50 },
         20, "the live worker took the dead one's 50 entries over");
diag(sprintf "taken over %.1f s after the kill", time - $t0);

webhook_rules($HOOK, { status => 200 });
wait_for(sub { accepted() >= 50 }, 30, "50 delivered");
sleep 1;
%c = check_deliveries([ accepted() ], event_uuids(%EV2));
is($c{delivered}, 50, "after the takeover: every event delivered");
is($c{duplicates}, 0, "none twice");
is($c{out_of_order}, 0, "in order per enrollment");
wait_for(sub { redis('XPENDING', 'mdm:events', 'webhooks')->[0] == 0 }, 10,
         "nothing pending");
is(stop_worker($alive), 0, "clean exit");

done_testing();
