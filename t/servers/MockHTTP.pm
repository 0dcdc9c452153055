package MockHTTP;

# The HTTP/1.1 plumbing of the mocks of Apple's APIs (dep.pl, vpp.pl): a
# non-blocking listener on 127.0.0.1, one IO::Select loop, keep-alive,
# requests with a Content-Length body.  The mock's handler gets ($c, $r):
# $r = {method, path, headers (lower-case names), body}; what it appends
# to $c->{out} is written back.  SIGTERM/SIGINT end serve().

use strict;
use warnings;

use Errno qw(EAGAIN EINTR);
use IO::Select;
use IO::Socket::INET;

my $running = 1;

my %Text = (200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized',
            403 => 'Forbidden', 404 => 'Not Found', 405 => 'Method Not Allowed',
            429 => 'Too Many Requests', 500 => 'Internal Server Error',
            502 => 'Bad Gateway', 503 => 'Service Unavailable');

# an answer onto $c->{out}; a body in {} or [] is JSON, any other text.
# $charset: how the mocked API spells UTF-8 in its Content-Type
sub respond {
    my ($c, $status, $body, $headers, $charset) = @_;
    $body //= '';
    $headers //= {};
    $headers->{'Content-Type'} //= ($body =~ /^[{\[]/)
        ? "application/json;charset=$charset" : "text/plain;charset=$charset";
    my $h = "HTTP/1.1 $status " . ($Text{$status} // 'Status') . "\r\n"
          . "Content-Length: " . length($body) . "\r\n";
    $h .= "$_: $headers->{$_}\r\n" for sort keys %$headers;
    $c->{out} .= "$h\r\n$body";
}

# the listener, the pid file (when given) and the signals
sub listen_on {
    my ($port, $pid) = @_;

    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp',
        Listen => 128, ReuseAddr => 1,
    ) or die "$0: listen 127.0.0.1:$port: $!\n";
    $listen->blocking(0);

    if ($pid) {
        open my $fh, '>', $pid or die "$0: write $pid: $!\n";
        print {$fh} "$$\n";
        close $fh;
    }

    $SIG{TERM} = $SIG{INT} = sub { $running = 0 };
    $SIG{PIPE} = 'IGNORE';

    return $listen;
}

# until a signal: accept, read, parse, hand each request to $handle, write
sub serve {
    my ($listen, $handle) = @_;
    my %Conns;
    my $sel = IO::Select->new($listen);

    my $close_conn = sub {
        my ($c) = @_;
        $sel->remove($c->{sock});
        delete $Conns{ $c->{fd} };
        close $c->{sock};
    };

    my $parse = sub {
        my ($c) = @_;
        while (1) {
            if (!$c->{req}) {
                my $end = index($c->{in}, "\r\n\r\n");
                return if $end < 0;
                my $head = substr($c->{in}, 0, $end + 4, '');
                my ($line, @lines) = split /\r\n/, $head;
                my ($m, $p) = ($line // '') =~ m{^(\S+)\s+(\S+)\s+HTTP/1\.[01]$}
                    or return $close_conn->($c);
                my %h;
                for (@lines) {
                    my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
                    $h{lc $k} = $v;
                }
                $c->{req} = { method => $m, path => $p, headers => \%h,
                              need => $h{'content-length'} // 0 };
            }
            my $r = $c->{req};
            return if length $c->{in} < $r->{need};
            $r->{body} = substr($c->{in}, 0, $r->{need}, '');
            delete $c->{req};
            $handle->($c, $r);
        }
    };

    while ($running) {
        my @w = grep { length $_->{out} } values %Conns;
        my ($rd, $wr) = IO::Select->select($sel, IO::Select->new(map { $_->{sock} } @w), undef, 0.2);
        for my $s (@{ $rd // [] }) {
            if ($s == $listen) {
                while (my $n = $listen->accept) {
                    $n->blocking(0);
                    $Conns{ fileno $n } = { sock => $n, fd => fileno $n, in => '', out => '' };
                    $sel->add($n);
                }
                next;
            }
            my $c = $Conns{ fileno $s } or next;
            my $n = sysread($s, my $buf, 262144);
            if (!$n) {
                next if !defined $n && ($! == EAGAIN || $! == EINTR);
                $close_conn->($c);
                next;
            }
            $c->{in} .= $buf;
            $parse->($c);
        }
        for my $s (@{ $wr // [] }) {
            my $c = $Conns{ fileno $s } or next;
            my $n = syswrite($s, $c->{out});
            if (defined $n) { substr($c->{out}, 0, $n, '') }
            elsif ($! != EAGAIN && $! != EINTR) { $close_conn->($c) }
        }
    }
}

1;
