#!/usr/bin/perl
# A stand-in for Apple's APNs provider API (api.push.apple.com), for tests.
#
#   apns.pl --port N --cert server.pem --key server.key --client-ca ca.pem
#           --log FILE [--rules FILE] [--max-streams N] [--pid FILE]
#
# HTTP/2 over TLS (ALPN h2) on 127.0.0.1 only. The TLS handshake requires a
# client certificate that verifies against --client-ca, the way APNs requires
# the MDM push certificate; a handshake without one (or with an expired or
# foreign one) fails. One process, one IO::Select loop, non-blocking sockets;
# many connections, many concurrent streams per connection
# (SETTINGS_MAX_CONCURRENT_STREAMS = --max-streams, default 500).
#
# Every request is appended to --log as one JSON line (flushed at once):
#   {"time": 1700000000.123, "conn": 1, "stream": 1, "method": "POST",
#    "path": "/3/device/<hex>", "authority": "127.0.0.1:PORT",
#    "token": "<hex>" (null unless the path is /3/device/<token>),
#    "headers": {"apns-push-type": "mdm", "apns-topic": ..., "content-type":
#                ..., ...} (regular headers, lowercase; repeats joined ", "),
#    "body": "<text>" (or "body_b64" when the body is not UTF-8),
#    "client_subject": "/UID=com.apple.mgmt.External.<uuid>/CN=APSP:<uuid>/C=US",
#    "client_uid": "com.apple.mgmt.External.<uuid>",
#    "status": 200, "reason": null or "Unregistered"..., "apns_id": "<uuid
#    answered>", "timestamp": <ms> (410 only), "delay_ms": N (if delayed),
#    "closed": true (only when the request was not answered because the
#    connection was dropped by "close_after"; status is then null)}
#
# Answers come from --rules, a JSON file re-read whenever it changes
# (inode, size or mtime); a missing or unreadable file means "all 200":
#   {"default": {"status": 200},
#    "tokens": {"<hex>": {"status": 410, "reason": "Unregistered",
#                         "timestamp": 1700000000000}},
#    "status": 429,          # every request; beats default, not tokens
#    "reason": "...",        # with "status"
#    "delay_ms": 0,          # answer later (also inside default/token rules)
#    "close_after": N,       # each connection answers N requests (counted
#                            # from when it opened or the rules last
#                            # changed), then is closed abruptly (no
#                            # GOAWAY, no TLS close_notify) on the next one;
#                            # that request and any others in the same read
#                            # are logged with "closed": true
#    "strict": true}         # APNs-like request validation (default on)
# A rule is {"status", "reason", "timestamp", "delay_ms"}; missing reasons
# get APNs' usual one for the status; 410 without timestamp gets "now".
# Precedence: strict validation error > tokens{token} > top-level "status"
# > default.
# Strict validation (as APNs): method not POST -> 405 MethodNotAllowed; path
# not /3/device/... -> 404 BadPath; empty or non-hex token -> 400
# MissingDeviceToken / BadDeviceToken; empty body -> 400 PayloadEmpty; body
# over 4096 bytes -> 413 PayloadTooLarge; apns-topic different from the
# certificate UID -> 400 TopicDisallowed; apns-push-type not one of APNs'
# types -> 400 InvalidPushType; apns-priority not 1/5/10 -> 400 BadPriority;
# apns-expiration not digits -> 400 BadExpirationDate; apns-id not a UUID ->
# 400 BadMessageId.
#
# 200: headers ":status 200", "apns-id" (the request's apns-id if it sent
# one, else a new UUID), no body. Errors: "apns-id" and a JSON body
# {"reason": "..."} plus "timestamp" for 410.
#
# Connection events (open, handshake failures, closes) go to stderr.
# SIGTERM/SIGINT: exit 0 (the pid file is removed).

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Getopt::Long qw(GetOptions);
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL qw(SSL_VERIFY_PEER SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                       SSL_WANT_READ SSL_WANT_WRITE);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Protocol::HTTP2::Constants qw(:frame_types :states :settings :errors);
use Protocol::HTTP2::Server;
use Scalar::Util ();
use Time::HiRes qw(time);

my %opt = ('max-streams' => 500);
GetOptions(\%opt, 'port=i', 'cert=s', 'key=s', 'client-ca=s', 'log=s',
           'rules=s', 'max-streams=i', 'pid=s')
    or die "usage: $0 --port N --cert F --key F --client-ca F --log F"
         . " [--rules F] [--max-streams N] [--pid F]\n";
for (qw(port cert key client-ca log)) {
    die "$0: --$_ is required\n" unless defined $opt{$_};
}

$| = 1;
STDERR->autoflush(1);

# Two fixes to Protocol::HTTP2 1.10's server side:
# * It treats any frame but PRIORITY/WINDOW_UPDATE on a closed stream as a
#   connection error. RFC 7540 §5.1: a RST_STREAM there is ignored (it races
#   with our END_STREAM), and so is anything on a stream we reset.
# * A stream over SETTINGS_MAX_CONCURRENT_STREAMS is refused without
#   decoding its header block, which desynchronises HPACK for the rest of the
#   connection. Here the stream is created, reset with REFUSED_STREAM, and
#   its frames are decoded (HPACK) and then ignored.
{
    no warnings 'redefine';
    my $orig_sm = \&Protocol::HTTP2::Connection::state_machine;
    *Protocol::HTTP2::Connection::state_machine = sub {
        my ($self, $act, $type, $flags, $sid) = @_;
        if ($act eq 'recv' && $sid
            && ($self->stream_state($sid) // 0) == CLOSED
            && ($type == RST_STREAM || $self->stream_reset($sid)))
        {
            return;
        }
        return $orig_sm->(@_);
    };

    my $orig_nps = \&Protocol::HTTP2::Stream::new_peer_stream;
    *Protocol::HTTP2::Stream::new_peer_stream = sub {
        my ($self, $sid) = @_;
        if ($sid % 2 == 1 && $sid > $self->{last_peer_stream}
            && !$self->goaway
            && $self->dec_setting(SETTINGS_MAX_CONCURRENT_STREAMS)
               <= $self->{active_peer_streams})
        {
            $self->{last_peer_stream} = $sid;
            $self->{active_peer_streams}++;    # the reset takes it back
            $self->{streams}{$sid} = {
                state => IDLE, weight => 16, stream_dep => 0,
                fcw_recv => $self->dec_setting(SETTINGS_INITIAL_WINDOW_SIZE),
                fcw_send => $self->enc_setting(SETTINGS_INITIAL_WINDOW_SIZE),
            };
            $self->enqueue(RST_STREAM, 0, $sid, REFUSED_STREAM);
            print STDERR sprintf("%.3f stream %d refused: over"
                . " SETTINGS_MAX_CONCURRENT_STREAMS\n", time, $sid);
            return $sid;
        }
        return $orig_nps->(@_);
    };
}

my $JSON = JSON::PP->new->utf8->canonical;

my %Reasons = (
    400 => 'BadDeviceToken', 403 => 'BadCertificate', 404 => 'BadPath',
    405 => 'MethodNotAllowed', 410 => 'Unregistered',
    413 => 'PayloadTooLarge', 429 => 'TooManyRequests',
    500 => 'InternalServerError', 503 => 'ServiceUnavailable',
);
my %PushTypes = map { $_ => 1 }
    qw(alert background location voip complication fileprovider mdm
       liveactivity pushtotalk widgets controls);

open my $log, '>>:raw', $opt{log} or die "$0: open $opt{log}: $!\n";
$log->autoflush(1);

my $listen = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1', LocalPort => $opt{port}, Proto => 'tcp',
    Listen => 1024, ReuseAddr => 1,
) or die "$0: listen 127.0.0.1:$opt{port}: $!\n";
$listen->blocking(0);

my $ctx = IO::Socket::SSL::SSL_Context->new(
    SSL_server         => 1,
    SSL_cert_file      => $opt{cert},
    SSL_key_file       => $opt{key},
    SSL_ca_file        => $opt{'client-ca'},
    SSL_verify_mode    => SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
    SSL_alpn_protocols => ['h2'],
    SSL_version        => 'SSLv23:!SSLv3:!TLSv1:!TLSv1_1',
) or die "$0: TLS context: " . IO::Socket::SSL::errstr() . "\n";

if ($opt{pid}) {
    open my $fh, '>', $opt{pid} or die "$0: write $opt{pid}: $!\n";
    print {$fh} "$$\n";
    close $fh;
}

my $running = 1;
$SIG{TERM} = $SIG{INT} = sub { $running = 0 };
$SIG{PIPE} = 'IGNORE';

print "listening 127.0.0.1:$opt{port}\n";

my %Conns;        # fileno => conn
my $ConnSeq = 0;  # numbers given to established connections
my @Delayed;      # [due, conn, sid, response]

my ($Rules, $RulesGen, $RulesSig) = ({}, 0, '');

sub note { print STDERR sprintf("%.3f %s\n", time, join '', @_) }

sub load_rules {
    my $file = $opt{rules};
    my @st = defined $file ? Time::HiRes::stat($file) : ();
    my $sig = @st ? join(':', @st[1, 7, 9]) : 'none';
    return if $sig eq $RulesSig;
    $RulesSig = $sig;
    $RulesGen++;
    $Rules = {};
    return unless @st;
    open my $fh, '<:raw', $file or return;
    local $/;
    my $text = <$fh>;
    close $fh;
    my $r = eval { $JSON->decode($text) };
    if (ref $r eq 'HASH') {
        $Rules = $r;
    } else {
        note("rules: cannot parse $file: ", $@ || 'not an object');
        $RulesSig = '';    # try again next time
    }
}

sub uuid {
    my @b = map { int rand 256 } 1 .. 16;
    $b[6] = ($b[6] & 0x0f) | 0x40;
    $b[8] = ($b[8] & 0x3f) | 0x80;
    my $h = uc join '', map { sprintf '%02x', $_ } @b;
    return join '-', substr($h, 0, 8), substr($h, 8, 4), substr($h, 12, 4),
                     substr($h, 16, 4), substr($h, 20);
}

# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------

sub accept_all {
    while (my $sock = $listen->accept) {
        $sock->blocking(0);
        my $ok = IO::Socket::SSL->start_SSL($sock,
            SSL_server => 1, SSL_reuse_ctx => $ctx, SSL_startHandshake => 0);
        if (!$ok) {
            note("start_SSL failed: ", IO::Socket::SSL::errstr());
            close $sock;
            next;
        }
        $Conns{ fileno $sock } = {
            sock => $sock, fd => fileno $sock, state => 'handshake',
            want => 'r', out => '',
            reqs => [], count => 0, gen => 0,
        };
    }
}

sub close_conn {
    my ($c, $why, $abrupt) = @_;
    return if $c->{state} eq 'closed';
    note("conn ", $c->{id} // '-', " closed: $why") if $c->{id} || $why;
    delete $Conns{ $c->{fd} };
    $c->{state} = 'closed';
    my $sock = $c->{sock};
    if ($sock->isa('IO::Socket::SSL')) {
        $sock->close(SSL_no_shutdown => $abrupt ? 1 : 0,
                     SSL_fast_shutdown => 1);
    }
    CORE::close($sock) if defined fileno $sock;
    delete $c->{h2};
    $c->{reqs} = [];
}

sub handshake {
    my ($c) = @_;
    if ($c->{sock}->accept_SSL) {
        my $sock = $c->{sock};
        my $alpn = $sock->alpn_selected // '';
        my $subject = $sock->peer_certificate('subject') // '';
        if ($alpn ne 'h2') {
            note("handshake ok but ALPN is '$alpn', not h2: closing",
                 " (subject $subject)");
            close_conn($c, '', 0);
            return;
        }
        my ($uid) = $subject =~ m{/UID=([^/]*)};
        $c->{id} = ++$ConnSeq;
        $c->{subject} = $subject;
        $c->{uid} = $uid;
        $c->{state} = 'h2';
        $c->{want} = 'r';
        my $id = $c->{id};
        Scalar::Util::weaken(my $wc = $c);
        $c->{h2} = Protocol::HTTP2::Server->new(
            settings => {
                &SETTINGS_MAX_CONCURRENT_STREAMS => $opt{'max-streams'},
            },
            on_request => sub {
                my ($sid, $headers, $data) = @_;
                push @{ $wc->{reqs} }, [ $sid, $headers, $data ] if $wc;
            },
            on_error => sub { note("conn $id: HTTP/2 error $_[0]") },
        );
        note("conn $id open, client $subject");
        pump($c);
        return;
    }
    my $err = $IO::Socket::SSL::SSL_ERROR;
    if ($! == EAGAIN || $! == EWOULDBLOCK) {
        if ($err == SSL_WANT_READ)  { $c->{want} = 'r'; return }
        if ($err == SSL_WANT_WRITE) { $c->{want} = 'w'; return }
    }
    my $why = IO::Socket::SSL::errstr() // $err // '';
    $why = "client closed the connection ($why)" if $why =~ /unexpected eof/i;
    note("TLS handshake failed: $why");
    drain_conn($c);
}

# After a failed handshake: OpenSSL has queued its alert; send FIN and
# discard what the client still sends, so that the close is not a TCP reset
# that could overtake the alert.
sub drain_conn {
    my ($c) = @_;
    CORE::shutdown($c->{sock}, 1);
    $c->{state} = 'drain';
    $c->{until} = time + 2;
}

sub drain_read {
    my ($c) = @_;
    my $n = POSIX::read($c->{fd}, my $buf, 65536);
    return if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
    close_conn($c, '', 1) if !$n || time > $c->{until};
}

# Moves the HTTP/2 output queue to the socket buffer and writes what the
# socket takes now.
sub pump {
    my ($c) = @_;
    return if $c->{state} ne 'h2';
    my $h2 = $c->{h2};
    while (my $frame = $h2->next_frame) {
        $c->{out} .= $frame;
    }
    flush_out($c);
    return if $c->{state} ne 'h2';
    if ($h2->shutdown && $c->{out} eq '') {
        close_conn($c, 'HTTP/2 shutdown', 0);
    }
}

sub flush_out {
    my ($c) = @_;
    while (length $c->{out}) {
        my $n = syswrite($c->{sock}, $c->{out}, 16384);
        if (defined $n) {
            substr($c->{out}, 0, $n, '');
            next;
        }
        if ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR) {
            return;
        }
        close_conn($c, "write error: $!", 0);
        return;
    }
}

sub read_conn {
    my ($c) = @_;
    my $sock = $c->{sock};
    for (1 .. 64) {
        my $n = sysread($sock, my $buf, 65536);
        if (!defined $n) {
            return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            close_conn($c, "read error: $!", 0);
            return;
        }
        if ($n == 0) {
            close_conn($c, 'peer closed', 0);
            return;
        }
        $c->{h2}->feed($buf);
        process_requests($c);
        return if $c->{state} ne 'h2';
        last unless $sock->pending;
    }
}

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

sub hdr_list_to_hash {
    my ($list) = @_;
    my (%pseudo, %h);
    for (my $i = 0; $i < @$list; $i += 2) {
        my ($k, $v) = (lc $list->[$i], $list->[$i + 1] // '');
        if ($k =~ /^:/) { $pseudo{$k} = $v; next }
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    return (\%pseudo, \%h);
}

sub rule_for {
    my ($c, $method, $path, $token, $h, $body) = @_;
    my $strict = !exists $Rules->{strict} || $Rules->{strict};
    if ($strict) {
        return { status => 405, reason => 'MethodNotAllowed' }
            if $method ne 'POST';
        return { status => 404, reason => 'BadPath' }
            if $path !~ m{^/3/device/};
        return { status => 400, reason => 'MissingDeviceToken' }
            if $path =~ m{^/3/device/?$};
        return { status => 400, reason => 'BadDeviceToken' }
            unless defined $token;
        return { status => 400, reason => 'PayloadEmpty' }
            if $body eq '';
        return { status => 413, reason => 'PayloadTooLarge' }
            if length($body) > 4096;
        return { status => 400, reason => 'TopicDisallowed' }
            if defined $h->{'apns-topic'}
            && ($h->{'apns-topic'} ne ($c->{uid} // ''));
        return { status => 400, reason => 'InvalidPushType' }
            if defined $h->{'apns-push-type'}
            && !$PushTypes{ $h->{'apns-push-type'} };
        return { status => 400, reason => 'BadPriority' }
            if defined $h->{'apns-priority'}
            && $h->{'apns-priority'} !~ /^(?:1|5|10)$/;
        return { status => 400, reason => 'BadExpirationDate' }
            if defined $h->{'apns-expiration'}
            && $h->{'apns-expiration'} !~ /^\d+$/;
        return { status => 400, reason => 'BadMessageId' }
            if defined $h->{'apns-id'}
            && $h->{'apns-id'} !~ /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-
                                     [0-9a-f]{4}-[0-9a-f]{12}$/xi;
    }
    my $tokens = ref $Rules->{tokens} eq 'HASH' ? $Rules->{tokens} : {};
    if (defined $token) {
        my $r = $tokens->{$token} // $tokens->{lc $token}
             // $tokens->{uc $token};
        return $r if $r;
    }
    if (defined $Rules->{status}) {
        return { status => $Rules->{status}, reason => $Rules->{reason},
                 timestamp => $Rules->{timestamp} };
    }
    return $Rules->{default} if ref $Rules->{default} eq 'HASH';
    return { status => 200 };
}

sub process_requests {
    my ($c) = @_;
    my $reqs = $c->{reqs};
    return unless @$reqs;
    $c->{reqs} = [];
    load_rules();
    for my $req (@$reqs) {
        handle_request($c, @$req);
    }
    pump($c);
}

sub handle_request {
    my ($c, $sid, $headers, $data) = @_;
    my ($ps, $h) = hdr_list_to_hash($headers || []);
    my $body = $data // '';
    my $method = $ps->{':method'} // '';
    my $path = $ps->{':path'} // '';
    my $token;
    $token = $1 if $path =~ m{^/3/device/([0-9a-fA-F]+)$};

    my %entry = (
        time => 0 + sprintf('%.6f', time), conn => $c->{id}, stream => $sid,
        method => $method, path => $path, authority => $ps->{':authority'},
        token => $token, headers => $h,
        client_subject => $c->{subject}, client_uid => $c->{uid},
    );
    my $copy = $body;
    if (utf8::decode($copy)) { $entry{body} = $copy }
    else { $entry{body_b64} = encode_base64($body, '') }

    # close_after: counted per connection since the rules last changed.
    my $closing = $c->{state} ne 'h2';
    if (!$closing && defined $Rules->{close_after}) {
        if ($c->{gen} != $RulesGen) {
            $c->{gen} = $RulesGen;
            $c->{count} = 0;
        }
        $closing = 1 if $c->{count} >= $Rules->{close_after};
        $c->{count}++;
    }
    if ($closing) {
        $entry{status} = undef;
        $entry{closed} = JSON::PP::true;
        write_log(\%entry);
        if ($c->{state} eq 'h2') {
            # Answers already queued go out first; then drop the line.
            pump($c);
            my $until = time + 1;
            while ($c->{state} eq 'h2' && length $c->{out} && time < $until) {
                IO::Select->new($c->{sock})->can_write(0.05);
                flush_out($c);
            }
            close_conn($c, 'close_after', 1) if $c->{state} eq 'h2';
        }
        return;
    }

    my $rule = rule_for($c, $method, $path, $token, $h, $body);
    $rule = { status => $rule } unless ref $rule eq 'HASH';
    my $status = 0 + ($rule->{status} // 200);
    my $apns_id = $h->{'apns-id'} // uuid();
    my @resp_headers = ('apns-id' => $apns_id);
    my $resp_body;
    $entry{status} = $status;
    $entry{apns_id} = $apns_id;
    $entry{reason} = undef;
    if ($status != 200) {
        my $reason = $rule->{reason} // $Reasons{$status} // 'Unknown';
        my %err = (reason => $reason);
        if ($status == 410) {
            $err{timestamp} = 0 + ($rule->{timestamp}
                                   // int(time * 1000));
            $entry{timestamp} = $err{timestamp};
        }
        $entry{reason} = $reason;
        $resp_body = $JSON->encode(\%err);
        push @resp_headers, 'content-type' => 'application/json',
                            'content-length' => length $resp_body;
    }
    my $delay = $rule->{delay_ms} // $Rules->{delay_ms};
    $entry{delay_ms} = 0 + $delay if $delay;
    write_log(\%entry);

    my $resp = { ':status' => $status, stream_id => $sid,
                 headers => \@resp_headers,
                 defined $resp_body ? (data => $resp_body) : () };
    if ($delay) {
        push @Delayed, [ time + $delay / 1000, $c, $resp ];
        @Delayed = sort { $a->[0] <=> $b->[0] } @Delayed;
    } else {
        respond($c, $resp);
    }
}

sub respond {
    my ($c, $resp) = @_;
    return if $c->{state} ne 'h2';
    my $state = $c->{h2}{con}->stream_state($resp->{stream_id}) // CLOSED;
    return if $state == CLOSED;    # reset by the client meanwhile
    $c->{h2}->response(%$resp);
}

sub write_log {
    my ($entry) = @_;
    syswrite($log, $JSON->encode($entry) . "\n");
}

# ---------------------------------------------------------------------------
# Main loop
# ---------------------------------------------------------------------------

while ($running) {
    my $rsel = IO::Select->new($listen);
    my $wsel = IO::Select->new;
    for my $c (values %Conns) {
        if ($c->{state} eq 'handshake') {
            ($c->{want} eq 'w' ? $wsel : $rsel)->add($c->{sock});
        } elsif ($c->{state} eq 'drain') {
            if (time > $c->{until}) { close_conn($c, '', 1); next }
            $rsel->add($c->{sock});
        } else {
            $rsel->add($c->{sock});
            $wsel->add($c->{sock}) if length $c->{out};
        }
    }
    my $timeout = 1;
    if (@Delayed) {
        my $t = $Delayed[0][0] - time;
        $timeout = $t < 0 ? 0 : $t < $timeout ? $t : $timeout;
    }
    my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $timeout);
    last unless $running;

    for my $fh (@{ $w || [] }) {
        my $c = $Conns{ fileno $fh } or next;
        if ($c->{state} eq 'handshake') { handshake($c) }
        else { flush_out($c); pump($c) }
    }
    for my $fh (@{ $r || [] }) {
        if ($fh == $listen) { accept_all(); next }
        my $c = $Conns{ fileno $fh } or next;
        if ($c->{state} eq 'handshake') { handshake($c) }
        elsif ($c->{state} eq 'h2') { read_conn($c); pump($c) }
        elsif ($c->{state} eq 'drain') { drain_read($c) }
    }
    my $now = time;
    my %touched;
    while (@Delayed && $Delayed[0][0] <= $now) {
        my (undef, $c, $resp) = @{ shift @Delayed };
        respond($c, $resp);
        $touched{$c} = $c;
    }
    pump($_) for values %touched;
}

note("exiting");
unlink $opt{pid} if $opt{pid};
exit 0;
