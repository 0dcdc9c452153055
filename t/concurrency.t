# 200 devices checking in at once, served by two nginx workers that share one
# Redis: every message stored, none lost or mixed up, both workers used.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use IO::Socket::INET;

workers(2);
master_on();
worker_connections(1024);
no_shuffle();

our $N = 200;

# a second listener with reuseport, so the kernel spreads connections over
# both workers instead of letting one of them take the whole burst
$ENV{TEST_NGINX_BURST_PORT} = do {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1) or die $!;
    my $p = $s->sockport;
    close $s;
    $p;
};

mdm_defaults(
    http_config => q{
        mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT timeout=10s;
        server {
            listen 127.0.0.1:$TEST_NGINX_BURST_PORT reuseport;
            location = /mdm/checkin {
                mdm_checkin;
                mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
                add_header X-Pid $pid always;
            }
        }
    },
    config => q{
        location = /ping { return 200 "up\n"; }
    },
);

# one signed request per device, each with its own certificate
sub requests ($$) {
    my ($vector, $prefix) = @_;
    return [ map {
        my $udid = sprintf "%s-%04d", $prefix, $_;
        my $body = plist_set(vector($vector), UDID => $udid);
        $body =~ s/^\s+|\s+\z//g;
        my $sig = mdm_signature($body, device_cert("burst$_", shared_key => 1));
        http_request(PUT => '/mdm/checkin', $body,
                     [ 'Content-Type' => $t::MDM::CheckinType,
                       'Mdm-Signature' => $sig ]);
    } 1 .. $N ];
}

sub burst ($$) {
    my ($vector, $what) = @_;
    my $reqs = requests($vector, 'BURST');
    my $res = concurrent_requests($ENV{TEST_NGINX_BURST_PORT}, $reqs,
                                  timeout => 30);
    my @ok = grep { ($_->{status} // 0) == 200 } @$res;
    Test::More::is(scalar @ok, $N, "$what: all $N devices answered 200")
        or Test::More::diag(join "\n", map { $_->{error} // $_->{status} }
                                       grep { ($_->{status} // 0) != 200 } @$res);
    my %pids = map { ($_->{headers}{'x-pid'} // '') => 1 } @ok;
    Test::More::cmp_ok(scalar keys %pids, '>=', 2, "$what: both workers served");
}

sub stored ($$) {
    my ($field, $want) = @_;
    my @bad = grep {
        (redis('HGET', sprintf('mdm:enr:{BURST-%04d}', $_), $field) // '') ne $want
    } 1 .. $N;
    return !@bad;
}

run_tests();

__DATA__

=== TEST 1: 200 concurrent Authenticates from 200 devices, over two workers
--- request
GET /ping
--- response_body
up
--- after_each eval
[ sub { ::burst("nanomdm/mdm/testdata/Authenticate.2.plist", "Authenticate") } ]
--- redis_check eval
[
  [ "XLEN mdm:events", $::N ],
  [ [qw(EVAL), "return #redis.call('KEYS', 'mdm:enr:{BURST-*')", 0], $::N ],
  [ "PING", sub { ::stored("enabled", "0") } ],
  [ "PING", sub { ::stored("type", "Device") } ],
]
--- no_error_log
[error]
[alert]



=== TEST 2: then 200 concurrent TokenUpdates: every enrollment enabled, each counted once
--- request
GET /ping
--- response_body
up
--- after_each eval
[ sub { ::burst("nanomdm/mdm/testdata/TokenUpdate.2.plist", "TokenUpdate") } ]
--- redis_check eval
[
  [ "XLEN mdm:events", 2 * $::N ],
  [ "PING", sub { ::stored("enabled", "1") } ],
  [ "PING", sub { ::stored("token_update_tally", "1") } ],
]
--- no_error_log
[error]
[alert]
