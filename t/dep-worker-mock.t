# The DEP mock (t/servers/dep.pl) is as strict as the worker's tests
# assume: a test that passes against it could not pass against a lenient
# one.  Talks to it directly (HTTP::Tiny, OAuth 1.0a signed here).
#
#     prove -I. -I t/lib t/dep-worker-mock.t

use strict;
use warnings;

use Test::More;
use t::MDM;
use t::MDMServers;
use t::MDMDep;
use Digest::SHA qw(hmac_sha1_base64);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);

my $dep = start_dep(fetch_max => 50);
my $c = $dep->{cred};
my $http = HTTP::Tiny->new(timeout => 10);
my %H = ('Content-Type' => 'application/json;charset=UTF8', 'User-Agent' => 't',
         'X-Server-Protocol-Version' => '10');

sub pct { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; $s }

sub oauth {
    my (%o) = @_;
    my %p = (oauth_consumer_key => $c->{ck}, oauth_token => $c->{at},
             oauth_signature_method => 'HMAC-SHA1', oauth_timestamp => $o{ts} // time,
             oauth_nonce => $o{nonce} // int(rand 1e9), oauth_version => '1.0');
    my $base = 'GET&' . pct("$dep->{url}/session") . '&'
             . pct(join '&', map { pct($_) . '=' . pct($p{$_}) } sort keys %p);
    my $sig = hmac_sha1_base64($base, pct($o{cs} // $c->{cs}) . '&' . pct($c->{as}));
    $sig .= '=' while length($sig) % 4;
    $p{oauth_signature} = $sig;
    return 'OAuth realm="ADM", ' . join ', ', map { "$_=\"" . pct($p{$_}) . '"' } sort keys %p;
}

sub session {
    my ($auth, %h) = @_;
    return $http->get("$dep->{url}/session", { headers => { %H, Authorization => $auth, %h } });
}

sub call {
    my ($method, $path, $tok, $body, %h) = @_;
    return $http->request($method, "$dep->{url}$path", { headers => {
        %H, ($tok ? ('X-ADM-Auth-Session' => $tok) : ()), %h },
        (defined $body ? (content => encode_json($body)) : ()) });
}

my $r = session(oauth());
is($r->{status}, 200, 'a good signature: 200');
my $tok = decode_json($r->{content})->{auth_session_token};
ok($tok, 'a session token');

is(session(oauth(cs => 'CS_wrong'))->{status}, 401, 'a wrong secret: 401');
my $ts = time;
is(session(oauth(nonce => 'n1', ts => $ts))->{status}, 200, 'nonce n1: 200');
is(session(oauth(nonce => 'n1', ts => $ts))->{status}, 401, 'nonce n1 again with its timestamp: 401');
is(session(oauth(ts => $ts - 600))->{status}, 401, 'a timestamp 10 minutes old: 401');
(my $bad = oauth()) =~ s/HMAC-SHA1/PLAINTEXT/;
is(session($bad)->{status}, 400, 'another signature method: 400');
is(session(oauth(), 'Content-Type' => 'text/plain')->{status}, 400, 'no JSON content type: 400');
{
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $dep->{port}) or die $!;
    print {$sock} "GET /session HTTP/1.1\r\nHost: 127.0.0.1:$dep->{port}\r\n"
        . "Content-Type: application/json\r\nAuthorization: " . oauth() . "\r\n\r\n";
    my $line = <$sock>;
    like($line, qr{^HTTP/1.1 400}, 'no User-Agent: 400');
}

is(call('GET', '/account')->{status}, 401, 'no session: 401');
is(call('GET', '/account', 'nope')->{status}, 401, 'unknown session: 401');
is(call('GET', '/account', $tok, undef, 'X-Server-Protocol-Version' => '')->{status}, 400,
   'no protocol version: 400');
$r = call('GET', '/account', $tok);
is($r->{status}, 200, '/account: 200');
is((grep { $_->{uri} eq '/server/devices' } @{ decode_json($r->{content})->{urls} })[0]{limit}{maximum},
   50, '/account advertises the fetch limit');

dep_ctl($dep, 'devices', { add => 120 });
is(call('POST', '/server/devices', $tok, { limit => 51 })->{status}, 400, 'limit above /account\'s: 400');
$r = call('POST', '/server/devices', $tok, { limit => 50 });
my $p = decode_json($r->{content});
is(scalar @{ $p->{devices} }, 50, 'fetch: a page of 50');
ok($p->{more_to_follow}, 'more_to_follow');
$p = decode_json(call('POST', '/server/devices', $tok, { limit => 50, cursor => $p->{cursor} })->{content});
$p = decode_json(call('POST', '/server/devices', $tok, { limit => 50, cursor => $p->{cursor} })->{content});
is(scalar @{ $p->{devices} }, 20, 'the last page: 20');
ok(!$p->{more_to_follow}, 'no more to follow');
like(call('POST', '/server/devices', $tok, { limit => 50, cursor => $p->{cursor} })->{content},
     qr/EXHAUSTED_CURSOR/, 'fetch past the end: EXHAUSTED_CURSOR');
like(call('POST', '/devices/sync', $tok, { limit => 50, cursor => 'x.y' })->{content},
     qr/INVALID_CURSOR/, 'garbage cursor: INVALID_CURSOR');
is(call('POST', '/devices/sync', $tok, { limit => 50 })->{status}, 400, 'sync without a cursor: 400');
dep_ctl($dep, 'devices', { delete => ['S0000001'] });
my $s = decode_json(call('POST', '/devices/sync', $tok, { limit => 50, cursor => $p->{cursor} })->{content});
is_deeply([map { "$_->{serial_number} $_->{op_type}" } @{ $s->{devices} }], ['S0000001 deleted'],
          'sync: the change since the cursor');
dep_ctl($dep, 'cursors', { expire => 1 });
like(call('POST', '/devices/sync', $tok, { limit => 50, cursor => $s->{cursor} })->{content},
     qr/EXPIRED_CURSOR/, 'expired: EXPIRED_CURSOR');

is(call('PUT', '/profile/devices', $tok, { profile_uuid => 'P', devices => [map { "S$_" } 1 .. 1001] })->{status},
   400, 'assign of 1,001 serials: 400');
$r = decode_json(call('PUT', '/profile/devices', $tok, { profile_uuid => 'P',
                      devices => ['S0000002', 'NOPE'] })->{content});
is_deeply($r->{devices}, { S0000002 => 'SUCCESS', NOPE => 'NOT_ACCESSIBLE' }, 'assign: per serial');

dep_ctl($dep, 'sessions', { rotate_every => 1 });
$r = call('GET', '/account', $tok);
my $new = $r->{headers}{'x-adm-auth-session'};
ok($new && $new ne $tok, 'rotation: a new X-ADM-Auth-Session on the answer');
is(call('GET', '/account', $tok)->{status}, 401, 'the old one is dead at once');

my $v = dep_stats($dep)->{violations};
ok(scalar(@$v) >= 5, 'the mock recorded each breach (' . scalar(@$v) . ')');
done_testing;
