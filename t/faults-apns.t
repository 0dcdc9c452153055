# Defects found by the fault-injection run (bench/faults.py, apns-faults
# after a worker restart), pinned here without nginx: mdm-worker against
# the APNs stand-in, jobs and enrollments written straight to Redis.
#
# 1. The connection-warming push fails at the transport level (APNs drops
#    the connection) while two or more pushes wait for it: releasing them
#    re-parked the second one onto the list being drained, and the worker
#    spun forever (no pushes, no webhooks, no heartbeat).
# 2. A worker started with many pushes to make loaded the push certificate
#    once per push (every push asked Redis before the first answer came),
#    each load forgetting the warmed connection.

use strict;
use warnings;
use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use Time::HiRes qw(time sleep);

my $cert = make_push_cert();
my $topic = $cert->{topic};
my $apns = start_apns(max_streams => 1000);
my $N = 50;

sub token ($) { sprintf "%064x", $_[0] + 0xabc000 }

redis('HSET', "mdm:pushcert:$topic", 'cert', $cert->{pem}, 'key', $cert->{key_pem},
      'updated_at', int(time));
for my $i (1 .. $N) {
    my $id = sprintf 'P-%04d', $i;
    redis('HSET', "mdm:enr:{$id}", 'type', 'Device', 'enabled', '1', 'topic', $topic,
          'token', token($i), 'push_magic', "magic-$i",
          'token_updated_at', int(time * 1000) - 60_000);
}

sub queue_pushes () {
    for my $i (1 .. $N) {
        my $id = sprintf 'P-%04d', $i;
        redis('RPUSH', 'mdm:push', $id) if redis('SADD', 'mdm:push:pending', $id);
    }
}

sub pushed () {
    my %t = map { ($_->{token} // '') => 1 } grep { ($_->{status} // 0) == 200 }
            apns_requests($apns);
    return scalar grep { $t{token($_)} } 1 .. $N;
}

# 1. every connection is dropped on its first request, pushes waiting
apns_rules($apns, { close_after => 0 });
queue_pushes();
my $w = start_worker(apns_url => $apns->{url}, apns_ca => $apns->{server_ca},
                     push_backoff_ms => 200, push_retries => 20, repush_interval => 0,
                     worker_id => 'park', heartbeat => 1);
eval { wait_for(sub { apns_requests($apns) >= 2 }, 20, 'the first dropped pushes') } or diag(worker_log($w));
sleep 1;
apns_rules($apns, {});
ok(eval { wait_for(sub { pushed() == $N }, 20, "$N pushes") },
   "after APNs dropped the warming connection: all $N pushes made")
    or diag("pushed: " . pushed());
redis('DEL', 'mdm:worker:park');
ok(eval { wait_for(sub { redis('EXISTS', 'mdm:worker:park') }, 5, 'heartbeat') },
   'the worker still beats');
kill_worker($w);

# 2. a start with many pushes to make: the certificate is loaded once
apns_clear($apns);
queue_pushes();
$w = start_worker(apns_url => $apns->{url}, apns_ca => $apns->{server_ca},
                  push_backoff_ms => 200, repush_interval => 0,
                  worker_id => 'park', heartbeat => 1);
ok(eval { wait_for(sub { pushed() == $N }, 20, "$N pushes") }, "$N pushes after a start");
my $loads = () = worker_log($w) =~ /push certificate for topic .* loaded/g;
is($loads, 1, 'the push certificate loaded once for all of them');
stop_worker($w);

done_testing();
