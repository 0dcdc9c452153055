package t::MDMWorker;

# Runs the real mdm-worker for the suites: start it against the test Redis
# (optionally under valgrind), stop it gracefully or kill it, read its log,
# and wait for conditions with a deadline.
#
#     use t::MDMWorker;
#     my $w = start_worker(apns_url => $apns->{url}, apns_ca => ...,
#                          valgrind => 1);
#     wait_for(sub { ... }, 20, "1000 pushes arrived");
#     my $status = stop_worker($w);          # SIGTERM, waits, exit status
#     valgrind_clean($w);                    # a Test::More check
#
# The binary is $ENV{MDM_WORKER}, else workers/mdm-worker of this checkout.

use strict;
use warnings;

use Exporter ();
our @ISA = ('Exporter');
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Cwd qw(abs_path);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More ();

our @EXPORT = qw(start_worker stop_worker kill_worker worker_log wait_for
                 valgrind_clean worker_binary);

# Test::Base evaluates `--- NAME eval` sections in Test::Base::Filter: the
# helpers must be callable there too
sub import {
    no strict 'refs';
    __PACKAGE__->export_to_level(1, @_);
    *{"Test::Base::Filter::$_"} = \&{$_} for @EXPORT;
}

my $Root = dirname(dirname(abs_path(__FILE__)));
my $Dir = tempdir('mdm-worker-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my @Running;
my $Count = 0;

sub worker_binary {
    return $ENV{MDM_WORKER} || "$Root/workers/mdm-worker";
}

# start_worker(SETTING => value, ..., valgrind => 1): settings become
# --SETTING value flags; redis defaults to the test Redis, worker_id to a
# name unique to this test file unless given.
sub start_worker {
    my %opt = @_;
    my $valgrind = delete $opt{valgrind};
    my $log = "$Dir/worker-" . ++$Count . ".log";

    $opt{redis} //= "127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}";
    $opt{worker_id} //= "test-$$";
    $opt{heartbeat} //= 1;

    my @cmd = (worker_binary(), map { ("--$_", $opt{$_}) } sort keys %opt);

    my $vlog;
    if ($valgrind) {
        $vlog = "$Dir/valgrind-$Count.log";
        unshift @cmd, 'valgrind', '--quiet', '--leak-check=full',
            '--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect',
            '--error-exitcode=99', "--log-file=$vlog";
    }

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>>', $log or die $!;
        open STDERR, '>>', $log or die $!;
        exec @cmd or die "exec $cmd[0]: $!";
    }

    my $w = { pid => $pid, log => $log, valgrind => $vlog, cmd => \@cmd };
    push @Running, $w;

    # started: its first log line is written once settings are read
    wait_for(sub { -s $log }, $valgrind ? 30 : 5, "mdm-worker started");

    return $w;
}

# SIGTERM and wait: the exit status (undef if it had to be killed)
sub stop_worker {
    my ($w, $timeout) = @_;
    return $w->{status} if exists $w->{status};

    kill 'TERM', $w->{pid};
    my $deadline = time + ($timeout // ($w->{valgrind} ? 60 : 15));

    while (time < $deadline) {
        if (waitpid($w->{pid}, WNOHANG) == $w->{pid}) {
            $w->{status} = $? >> 8;
            @Running = grep { $_ != $w } @Running;
            return $w->{status};
        }
        sleep 0.05;
    }

    kill_worker($w);
    return $w->{status} = undef;
}

sub kill_worker {
    my ($w) = @_;
    return if exists $w->{status};
    kill 'KILL', $w->{pid};
    waitpid($w->{pid}, 0);
    $w->{status} = undef;
    @Running = grep { $_ != $w } @Running;
}

sub worker_log {
    my ($w) = @_;
    open my $fh, '<', $w->{log} or return '';
    local $/;
    return scalar <$fh>;
}

# wait_for(CODE, SECONDS, WHAT): true once CODE is; dies with WHAT if not
sub wait_for {
    my ($code, $seconds, $what) = @_;
    my $deadline = time + $seconds;

    while (time < $deadline) {
        return 1 if $code->();
        sleep 0.05;
    }

    return 1 if $code->();
    die "timed out after ${seconds}s waiting for: $what\n";
}

# after stop_worker: valgrind saw no errors and no leaks
sub valgrind_clean {
    my ($w, $name) = @_;
    my $report = do {
        open my $fh, '<', $w->{valgrind} or return Test::More::fail("$name: no valgrind log");
        local $/;
        <$fh>;
    };

    my $ok = Test::More::ok(defined $w->{status} && $w->{status} == 0
                            && $report !~ /\S/,
                            "$name: valgrind reports nothing, exit status 0");
    Test::More::diag("exit status: " . ($w->{status} // 'killed')
                     . "\n$report\n" . worker_log($w)) unless $ok;
    return $ok;
}

END {
    local $?;
    kill_worker($_) for @Running;
}

1;
