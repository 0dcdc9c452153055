# Fault injection under load, the short version of `./build.sh soak`
# (bench/faults.py): 200 signed devices polling and answering commands
# through nginx and a Redis master + replica + three sentinels (wait=1),
# mdm-worker pushing to the APNs mock and posting webhooks, while in turn
# the Redis master is SIGKILLed and restarted from its AOF, mdm-worker is
# SIGKILLed and restarted, and the master is SIGKILLed for good (Sentinel
# fails over), with the APNs mock dropping connections and answering 500/429
# in between. After each: nothing but 200/503 answered, every Acknowledged
# answered 200 stored, every command delivered exactly once, pushed, and
# its webhook delivered in order. Everything on 127.0.0.1, ~60-90 s.

use strict;
use warnings;
use Test::More;
use JSON::PP ();
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $root = dirname(dirname(abs_path(__FILE__)));

plan skip_all => 'python3 with the cryptography package is needed (Debian: python3-cryptography)'
    if system('/usr/bin/python3', '-c', 'import cryptography.hazmat.primitives.serialization.pkcs7') != 0;

$ENV{MDM_WORKER} //= "$root/workers/mdm-worker";
$ENV{TEST_NGINX_LOAD_MODULES} //= "$root/build/nginx/ngx_http_mdm_module.so";
$ENV{TEST_NGINX_BINARY} //= '/usr/sbin/nginx';

my $dir = tempdir('mdm-faults-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @faults = qw(redis-restart worker-kill apns-faults failover-wait);
my @cmd = ('/usr/bin/python3', "$root/bench/faults.py", '--devices', 200, '--keys', 4,
           '--conns', 16, '--poll', 2, '--recover-secs', 25,
           '--faults', join(',', @faults), '--json', "$dir/rows.json");
my $t0 = time;
my $out = `@cmd 2>&1`;
my $rc = $? >> 8;
diag($out) if $rc || $ENV{TEST_VERBOSE};
is($rc, 0, 'bench/faults.py: nothing promised was lost (exit 0)');

open my $fh, '<', "$dir/rows.json" or BAIL_OUT("no results: $out");
my $res = do { local $/; JSON::PP->new->decode(<$fh>) };
my %row = map { $_->{fault} => $_ } @{ $res->{rows} };

for my $f (@faults) {
    my $r = $row{$f} or do { fail("$f ran"); next };
    cmp_ok($r->{requests}, '>', 300, "$f: under load ($r->{requests} requests)");
    is($r->{bad}, 0, "$f: no answer other than 200/503");
    is($r->{acked}, 200, "$f: every device acknowledged the command queued meanwhile");
    is($r->{lost_store}, 0, "$f: every Acknowledged answered 200 is stored");
    is($r->{dup}, 0, "$f: no command delivered twice");
    is($r->{undelivered}, 0, "$f: every command delivered");
    is($r->{nopush}, 0, "$f: every device pushed after its enqueue");
    is($r->{nohook}, 0, "$f: every acknowledged command reached the webhook receiver");
}
# the faults were real: Redis going away shows as 503s
cmp_ok($row{$_}{n503} + $row{$_}{noanswer}, '>', 0, "$_: the fault was felt (503s)")
    for qw(redis-restart failover-wait);
is($res->{global}{order_bad}, 0, 'webhooks in stream order for every enrollment');
is($res->{global}{dead}, 0, 'no webhook dead letters');
cmp_ok(time - $t0, '<', 150, 'bounded in time');

done_testing();
