# The identity cache's verdicts in shared memory (mdm_identity_cache
# zone=NAME:SIZE): with two workers behind a reuseport listener, a
# certificate verified by one worker is a zone hit in the other; after
# `nginx -s reload` (HUP) a device is a hit again without the full
# verification, unless the CA file changed; a zone smaller than the fleet
# evicts the least recently used verdicts and every request still passes.
# The per-worker key cache stays in front: a key hit never touches the zone.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use IO::Socket::INET;
use File::Copy qw(copy);

no_shuffle();
master_on();
workers(2);
worker_connections(1024);

our $BODY = vector("nanomdm/mdm/testdata/Authenticate.2.plist");
our $CA = pki_dir() . "/shm-ca.pem";

# a port of our own, listened to with reuseport: the kernel spreads the
# connections over both workers
our $PORT = do {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)
        or die "no free port: $!";
    my $p = $s->sockport;
    close $s;
    $p;
};
$ENV{TEST_NGINX_SHM_PORT} = $PORT;

copy(pki_dir() . "/identity-ca.pem", $CA) or die "copy: $!";

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=10s;',
    config => q{
        listen 127.0.0.1:$TEST_NGINX_SHM_PORT reuseport;
        mdm_identity_ca $TEST_NGINX_PKI/shm-ca.pem;
        mdm_identity_cache 1000 zone=ids:1m;
        location = /mdm { mdm_checkin; add_header X-Pid $pid always; }
        location = /metrics { mdm_metrics; }
    },
);

sub body_for ($) {
    my $b = plist_set($BODY, UDID => sprintf("SHM-%05d", $_[0]));
    $b =~ s/^\s+|\s+\z//g;
    return $b;
}

our %DEV;

sub dev ($) {
    my ($i) = @_;
    return $DEV{$i} //= do {
        my $body = body_for($i);
        my $cert = device_cert("shm$i", shared_key => 1);
        { body => $body, sig => mdm_signature($body, $cert) };
    };
}

# one signed Authenticate on a new connection: [status, pid of the worker]
sub checkin ($) {
    my ($i) = @_;
    my $d = dev($i);
    my $r = concurrent_requests($PORT, [ http_request(PUT => '/mdm', $d->{body},
        [ 'Content-Type' => $t::MDM::CheckinType, 'Mdm-Signature' => $d->{sig} ]) ],
        timeout => 20)->[0];
    return [ $r->{status} // 0, $r->{headers}{'x-pid'} // 0 ];
}

sub metrics () {
    my $r = concurrent_requests(server_port(), [ http_request(GET => '/metrics') ],
                                timeout => 20)->[0];
    die "metrics: $r->{status}" unless ($r->{status} // 0) == 200;
    my %m;
    for my $k (qw(hit miss)) {
        $m{$k} = $r->{body} =~ /^ngx_mdm_identity_verdict_lookups_total\{zone="ids",result="$k"\} (\d+)$/m
                 ? $1 : undef;
    }
    $m{evictions} = $r->{body} =~ /^ngx_mdm_identity_verdict_evictions_total\{zone="ids"\} (\d+)$/m ? $1 : undef;
    $m{entries} = $r->{body} =~ /^ngx_mdm_identity_verdicts\{zone="ids"\} (\d+)$/m ? $1 : undef;
    $m{bytes} = $r->{body} =~ /^ngx_mdm_identity_verdict_zone_bytes\{zone="ids"\} (\d+)$/m ? $1 : undef;
    return \%m;
}

sub master_pid () {
    open my $fh, '<', "$Test::Nginx::Socket::ServRoot/logs/nginx.pid" or return undef;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

sub workers_of ($) {
    my ($master) = @_;
    my @w;
    for my $stat (glob "/proc/[0-9]*/stat") {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        # pid (comm) state ppid ...
        push @w, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+)/ && $2 == $master;
    }
    return sort @w;
}

# HUP, then wait until the old workers are gone and two new ones run
sub reload () {
    my $master = master_pid() or die "no nginx pid";
    my %old = map { $_ => 1 } workers_of($master);
    kill 'HUP', $master;
    for (1 .. 200) {
        my @w = workers_of($master);
        return if @w >= 2 && !grep { $old{$_} } @w;
        select undef, undef, undef, 0.05;
    }
    die "no new workers after the reload";
}

# a request of device $i served by a worker other than $pid (reuseport
# spreads connections by their source port): [status, pid]
sub checkin_elsewhere ($$) {
    my ($i, $pid) = @_;
    for (1 .. 100) {
        my $r = checkin($i);
        return $r if $r->[1] != $pid || $r->[0] != 200;
    }
    return [ 0, $pid ];
}

sub two_workers () {
    my $m0 = metrics();
    Test::More::is($m0->{hit}, 0, 'no hit before any device');
    Test::More::is($m0->{bytes}, 1048576, 'the zone is 1m');

    my $first = checkin(1);
    Test::More::is($first->[0], 200, 'the first sight of a certificate is verified');
    my $m1 = metrics();
    Test::More::is($m1->{miss}, 1, 'the first sight: a miss in the zone');
    Test::More::is($m1->{entries}, 1, 'one verdict kept');

    my $other = checkin_elsewhere(1, $first->[1]);
    Test::More::is($other->[0], 200, 'the other worker accepts the device');
    Test::More::isnt($other->[1], $first->[1], "served by the other worker ($first->[1], then $other->[1])");

    my $m2 = metrics();
    Test::More::is($m2->{hit}, 1, 'the other worker found the verdict in the zone');
    Test::More::is($m2->{miss}, 1, 'no second full verification');

    # both workers have the key now: key hits never touch the zone
    checkin(1) for 1 .. 20;
    my $m3 = metrics();
    Test::More::is($m3->{hit} + $m3->{miss}, 2, 'key cache hits do not look in the zone');

    # a reload: new workers, empty key caches, the zone's verdicts stay
    reload();
    my $after = checkin(1);
    Test::More::is($after->[0], 200, 'after the reload the device is accepted');
    my $m4 = metrics();
    Test::More::is($m4->{hit}, 2, 'after the reload: a zone hit') or Test::More::diag(explain $m4);
    Test::More::is($m4->{miss}, 1, 'after the reload: no full verification');
    Test::More::is($m4->{entries}, 1, 'the verdict survived the reload');

    # a CA file that no longer trusts the device: never the old verdict
    copy(pki_dir() . "/rogue-ca.pem", $CA) or die "copy: $!";
    reload();
    my $rogue = checkin(1);
    Test::More::is($rogue->[0], 400, 'another CA: the device is refused, the old verdict is not used');
    my $m5 = metrics();
    Test::More::is($m5->{hit}, 2, 'another CA: no hit');
    Test::More::is($m5->{miss}, 2, 'another CA: a miss');

    # the same CA with a root added: verified again, then a hit in the other worker
    open my $fh, '>', $CA or die $!;
    print $fh t::MDM::_slurp(pki_dir() . "/identity-ca.pem"), t::MDM::_slurp(pki_dir() . "/rogue-ca.pem");
    close $fh;
    reload();
    my $changed = checkin(1);
    Test::More::is($changed->[0], 200, 'a CA file with a root more: accepted');
    my $m6 = metrics();
    Test::More::is($m6->{miss}, 3, 'a changed CA file: verified again (a miss)');
    Test::More::is($m6->{entries}, 2, 'a verdict for each CA');

    # back to the first CA file: its verdict is still there
    copy(pki_dir() . "/identity-ca.pem", $CA) or die "copy: $!";
    reload();
    Test::More::is(checkin(1)->[0], 200, 'the first CA file again: accepted');
    my $m7 = metrics();
    Test::More::is($m7->{hit}, 3, 'the first CA file again: its verdict is a hit');
    Test::More::is($m7->{miss}, 3, 'the first CA file again: no full verification');
}

our $FLEET = 240;

sub full_zone () {
    dev($_) for 1 .. $FLEET;

    my @st;
    for (my $i = 1; $i <= $FLEET; $i += 40) {
        my @batch = grep { $_ <= $FLEET } $i .. $i + 39;
        push @st, map { $_->{status} // 0 } @{ concurrent_requests($PORT, [ map {
            http_request(PUT => '/mdm', dev($_)->{body},
                [ 'Content-Type' => $t::MDM::CheckinType, 'Mdm-Signature' => dev($_)->{sig} ])
        } @batch ], timeout => 60) };
    }
    my @bad = grep { $_ != 200 } @st;
    Test::More::is(scalar @bad, 0, "$FLEET devices through a zone too small for them: all 200");

    my $m = metrics();
    Test::More::cmp_ok($m->{entries}, '<', $FLEET, "the zone holds fewer ($m->{entries})");
    Test::More::cmp_ok($m->{entries}, '>', 50, 'but a good part');
    Test::More::cmp_ok($m->{evictions}, '>', 0, "LRU evictions ($m->{evictions})");
    Test::More::is($m->{entries} + $m->{evictions}, $FLEET, 'each verdict kept once, then evicted or held');

    # new workers (empty key caches), the same zone: the oldest device was
    # evicted and is verified again, a recent one comes from the zone
    reload();
    my $h = $m->{hit};
    Test::More::is(checkin(1)->[0], 200, 'the oldest device again');
    my $m1 = metrics();
    Test::More::is($m1->{miss}, $m->{miss} + 1, 'the oldest: evicted, verified again');
    Test::More::is(checkin($FLEET - 10)->[0], 200, 'a recent device again');
    my $m2 = metrics();
    Test::More::is($m2->{hit}, $h + 1, 'a recent one: a zone hit');
    Test::More::is($m2->{entries}, $m->{entries}, 'the bound holds');
}

run_tests();

__DATA__

=== TEST 1: two workers share the verdicts; they survive a reload unless the CA changes
--- request
GET /metrics
--- error_code: 200
--- after_each eval
[ sub { ::two_workers() } ]
--- no_error_log
[alert]
[crit]



=== TEST 2: a zone smaller than the fleet: LRU evictions, every request 200
--- config
listen 127.0.0.1:$TEST_NGINX_SHM_PORT reuseport;
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
mdm_identity_cache 1 zone=ids:32k;
location = /mdm { mdm_checkin; add_header X-Pid $pid always; }
location = /metrics { mdm_metrics; }
--- request
GET /metrics
--- error_code: 200
--- after_each eval
[ sub { ::full_zone() } ]
--- no_error_log
[alert]
[crit]
no memory



=== TEST 3: the old form (verdicts per worker) still works, and the zone metrics are absent
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
mdm_identity_cache 1000 verdicts=5000;
location = /metrics { mdm_metrics; }
--- request
GET /metrics
--- error_code: 200
--- response_body_unlike
ngx_mdm_identity_verdict_lookups_total



=== TEST 4: without a zone named, the default one (mdm_identity, 16m)
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /mdm { mdm_checkin; }
location = /metrics { mdm_metrics; }
--- request
GET /metrics
--- error_code: 200
--- response_body_like
(?m)^ngx_mdm_identity_verdict_zone_bytes\{zone="mdm_identity"\} 16777216$



=== TEST 5: verdicts= and zone= together fail nginx -t
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
mdm_identity_cache 1000 verdicts=10 zone=ids:1m;
--- must_die
--- error_log
mdm_identity_cache takes one of "verdicts=" (per worker) and "zone=" (shared by the workers), not "zone=ids:1m" as well



=== TEST 6: a zone without a size fails nginx -t
--- config
mdm_identity_cache zone=ids;
--- must_die
--- error_log
invalid mdm_identity_cache "zone=ids": "zone=NAME:SIZE", e.g. "zone=mdm_ids:64m"



=== TEST 7: a zone too small fails nginx -t
--- config
mdm_identity_cache zone=ids:8k;
--- must_die
--- error_log
invalid mdm_identity_cache zone size "8k": at least 32k



=== TEST 8: one zone name with two sizes fails nginx -t
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
location = /a { mdm_checkin; mdm_identity_cache zone=ids:1m; }
location = /b { mdm_checkin; mdm_identity_cache zone=ids:2m; }
--- must_die
--- error_log
conflicts with already declared size



=== TEST 9: a zone name that is not plain fails nginx -t
--- config
mdm_identity_cache "zone=i{d}s:1m";
--- must_die
--- error_log
invalid mdm_identity_cache zone name "i{d}s"



=== TEST 10: the zone alone keeps the default number of keys; locations share it
--- config
mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
mdm_identity_cache zone=ids:1m;
location = /a { mdm_checkin; }
location = /b { mdm_checkin; mdm_identity_cache 50; }
location = /metrics { mdm_metrics; }
--- request
GET /metrics
--- error_code: 200
--- response_body_like
(?m)^ngx_mdm_identity_verdict_zone_bytes\{zone="ids"\} 1048576$
--- response_body_unlike
zone="mdm_identity"
