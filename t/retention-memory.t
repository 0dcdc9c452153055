# Redis memory under a fleet's Idle traffic with no webhook (issue 9 #6):
# MDM_IDLE_COUNT (default 100,000) signed Idle connects of one enrolled
# device through nginx; Redis used_memory after the first 1,000 and after
# the last must not differ by more than 1 MB (before the fix every Idle
# appended its body to mdm:events: ~60 MB over 100,000).
#
# The same signed request is sent each time (the identity verdict cache
# makes that cheap), pipelined over a few keep-alive connections, so the
# run stays well under 90 s on 2 cores.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes ();

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT; '
                   . 'keepalive_requests 1000000; access_log off;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm { mdm_server; }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $N = $ENV{MDM_IDLE_COUNT} // 100000;

sub used_memory {
    return (redis('INFO', 'memory') =~ /^used_memory:(\d+)/m)[0];
}

# Sends $n copies of $req over $conns connections, at most $depth in flight
# on each; returns how many were answered 200.
sub burst {
    my ($port, $req, $n, $conns, $depth) = @_;
    my $sel = IO::Select->new;
    my %c;
    for (1 .. $conns) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
            or die "connect: $!";
        $c{fileno $s} = { sock => $s, inflight => 0, in => '' };
        $sel->add($s);
    }
    my ($sent, $ok, $answered) = (0, 0, 0);
    my $deadline = time + 120;
    while ($answered < $n && time < $deadline) {
        for my $k (values %c) {
            my $want = $depth - $k->{inflight};
            $want = $n - $sent if $want > $n - $sent;
            next if $want <= 0;
            my $buf = $req x $want;
            my $off = 0;
            while ($off < length $buf) {
                my $w = syswrite($k->{sock}, $buf, length($buf) - $off, $off);
                die "write: $!" unless defined $w;
                $off += $w;
            }
            $k->{inflight} += $want;
            $sent += $want;
        }
        for my $s ($sel->can_read(5)) {
            my $k = $c{fileno $s};
            my $r = sysread($s, $k->{in}, 1 << 20, length $k->{in});
            die "read: " . ($r // $!) unless $r;
            # every answer is headers only (Content-Length: 0)
            while ($k->{in} =~ s/\AHTTP\/1\.1 (\d+)[^\r]*\r\n(?:[^\r]+\r\n)*\r\n//) {
                $ok++ if $1 == 200;
                $answered++;
                $k->{inflight}--;
            }
        }
    }
    close $_->{sock} for values %c;
    return $ok;
}

sub idle_request {
    my $body = plist_set(vector('commandment/testdata/NotNow/iOS-11.3.1.xml'),
                         UDID => $MAC, Status => 'Idle', CommandUUID => undef);
    $body =~ s/^\s+|\s+\z//g;
    my $sig = mdm_signature($body, 'mac');
    return "PUT /mdm HTTP/1.1\r\nHost: localhost\r\n"
         . "Content-Type: application/x-apple-aspen-mdm\r\n"
         . "Mdm-Signature: $sig\r\nContent-Length: " . length($body)
         . "\r\n\r\n$body";
}

sub measure {
    my $port = server_port_for_client();
    my $req = idle_request();
    redis('DEL', 'mdm:webhooks:want', 'mdm:events');

    my $t0 = Time::HiRes::time;
    Test::More::is(burst($port, $req, 1000, 4, 32), 1000, "first 1,000 Idles answered 200");
    my $before = used_memory();
    Test::More::is(burst($port, $req, $N - 1000, 4, 32), $N - 1000,
                   "the other " . ($N - 1000) . " Idles answered 200");
    my $after = used_memory();
    my $secs = Time::HiRes::time - $t0;

    Test::More::diag(sprintf "%d Idles in %.1f s (%.0f/s); used_memory after "
        . "1,000: %d, after %d: %d (%+d bytes); mdm:events: %d",
        $N, $secs, $N / $secs, $before, $N, $after, $after - $before,
        redis('XLEN', 'mdm:events'));
    Test::More::cmp_ok($after - $before, '<', 1 << 20,
                       "Redis memory does not grow with Idles");
    Test::More::is(redis('EXISTS', 'mdm:events'), 0, "no Idle events");
}

run_tests();

__DATA__

=== TEST 1: enroll
--- redis_setup
FLUSHALL
--- request eval
[ checkin_request("/mdm nanomdm/mdm/testdata/Authenticate.2.plist", UDID => $::MAC),
  checkin_request("/mdm nanomdm/mdm/testdata/TokenUpdate.2.plist", UDID => $::MAC) ]
--- signed_by: mac
--- error_code eval
[ 200, 200 ]



=== TEST 2: 100,000 signed Idle connects with no webhook: Redis memory stays flat
--- request
GET /nothing
--- error_code: 404
--- after_each eval
[ \&::measure ]
--- timeout: 150
