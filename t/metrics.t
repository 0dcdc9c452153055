# mdm_metrics: the module's counters (shared by the workers, kept across a
# reload) and Redis's part, in the Prometheus text format that promtool
# accepts, and matching the traffic this test sent.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use MIME::Base64 qw(encode_base64);
use File::Temp qw(tempfile);

workers(2);
master_on();
no_shuffle();

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $BADAUTH = "Authorization: Basic " . encode_base64("nanomdm:wrong", '');
our $CERT = make_push_cert();

# only the first block has a config: the others talk to the same nginx, so
# the counters add up across blocks
our $Config = qq{
    location = /metrics { mdm_metrics; }
    location /v1/ { mdm_api; mdm_api_key $KEY; }
    location = /mdm/checkin {
        mdm_checkin;
        mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
    }
};

# the value of one sample, or undef
sub metric ($$) {
    my ($body, $sample) = @_;
    return $body =~ /^\Q$sample\E (\S+)$/m ? $1 : undef;
}

sub promtool_ok ($) {
    my ($body) = @_;
    my ($fh, $file) = tempfile();
    print $fh $body;
    close $fh;
    my $out = `promtool check metrics < $file 2>&1`;
    Test::More::is($?, 0, 'promtool check metrics accepts it') or Test::More::diag($out);
}

sub nginx_pid () {
    open my $fh, '<', "$Test::Nginx::Socket::ServRoot/logs/nginx.pid" or return undef;
    my $pid = <$fh>;
    chomp $pid;
    return $pid;
}

run_tests();

__DATA__

=== TEST 1: traffic: two signed Authenticates, one unsigned check-in, an API call, a bad API key
--- http_config
mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config eval
$::Config
--- request eval
[ checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist", UDID => "MET-1"),
  checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist", UDID => "MET-2"),
  checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist", UDID => "MET-1"),
  "PUT /v1/pushcert\n$::CERT->{pem}$::CERT->{key_pem}",
  "GET /v1/enrollments/MET-1" ]
--- more_headers eval
[ "Content-Type: $t::MDM::CheckinType", "Content-Type: $t::MDM::CheckinType",
  "Content-Type: $t::MDM::CheckinType", $::AUTH, $::BADAUTH ]
--- signed_by eval: [ "met1", "met2", undef, undef, undef ]
--- error_code eval
[ 200, 200, 400, 200, 401 ]



=== TEST 2: the counters match that traffic, the format passes promtool, Redis's part is there
--- request
GET /metrics
--- error_code: 200
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like eval
qr/ngx_mdm_redis_up 1\n/
--- after_each eval
[ sub {
    my ($block, $b) = @_;
    ::promtool_ok($b);
    Test::More::is(::metric($b, 'ngx_mdm_requests_total{location="checkin",message="Authenticate",code="200"}'), 2, 'two Authenticates answered 200');
    Test::More::is(::metric($b, 'ngx_mdm_requests_total{location="checkin",message="other",code="400"}')
                   // ::metric($b, 'ngx_mdm_requests_total{location="checkin",message="TokenUpdate",code="400"}'), 1,
                   'the unsigned one answered 400');
    Test::More::is(::metric($b, 'ngx_mdm_identity_failures_total{reason="no_certificate"}'), 1, 'counted as no certificate');
    Test::More::is(::metric($b, 'ngx_mdm_requests_total{location="api",message="pushcert",code="200"}'), 1, 'the API call');
    Test::More::is(::metric($b, 'ngx_mdm_requests_total{location="api",message="enrollments",code="401"}'), 1, 'the bad key');
    Test::More::is(::metric($b, 'ngx_mdm_request_duration_seconds_count{location="checkin"}'), 3, 'three check-ins timed');
    Test::More::cmp_ok(::metric($b, 'ngx_mdm_redis_calls_total'), '>=', 3, 'Redis calls counted');
    Test::More::is(::metric($b, qq{ngx_mdm_push_certificate_expiry_timestamp_seconds{topic="$::CERT->{topic}"}}),
                   redis('HGET', "mdm:pushcert:$::CERT->{topic}", 'not_after'), 'the push certificate expiry, from Redis');
    Test::More::is(::metric($b, 'ngx_mdm_identity_cache_lookups_total{result="miss"}'), 2, 'two first sightings of a certificate');
} ]



=== TEST 3: after a reload (HUP) the counters go on from where they were
--- request
GET /metrics
--- error_code: 200
--- redis_setup eval
sub {
    my $pid = ::nginx_pid() or die "no nginx pid";
    kill 'HUP', $pid;
    sleep 1;
}
--- response_body_like eval
qr/^ngx_mdm_requests_total\{location="checkin",message="Authenticate",code="200"\} 2$/m



=== TEST 4: Redis down: the module's part all the same, ngx_mdm_redis_up 0, one warning
--- redis_setup eval
sub { redis_stop() }
--- request
GET /metrics
--- error_code: 200
--- response_body_like eval
qr/ngx_mdm_redis_up 0\n(?!.*ngx_mdm_apns_pushes_total)/s
--- error_log
mdm: metrics without Redis's part



=== TEST 5: a method other than GET or HEAD is refused
--- request
POST /metrics
x
--- error_code: 405



=== TEST 6: mdm_metrics without mdm_redis fails nginx -t
--- http_config
--- config
location = /metrics { mdm_metrics; }
--- must_die
--- error_log
needs "mdm_redis" in http{}
