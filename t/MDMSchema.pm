package t::MDMSchema;

# Apple's command schemas (apple-device-management/mdm/commands/*.yaml)
# against the plists the server builds, for t/templates*.t and
# t/blueprint*.t:
#
#   my $p = plist_parse($xml);          # typed tree: { t => TYPE, v => ... }
#   my @errors = schema_check($p);      # [] when Command fits its schema
#   my $file = schema_file('DeviceLock');
#
# schema_check reads the YAML file whose payload.requesttype is the
# command's RequestType and checks Command recursively: every key known to
# the schema (no unknown keys), every required key present, types as the
# schema says, values inside rangelist, array elements as their subkeys
# say (a string array whose item lists subkeys takes only those names, as
# DeviceInformation's Queries; an array of several dictionaries, as
# Settings, matches each element by its Item).
#
# The schemas are looked for in $ENV{MDM_APPLE_SCHEMAS}, else in
# $MDM_SHARED (default ../shared beside the repository)
# /apple-device-management/mdm/commands;
# without them the check dies: a validation that silently passes would
# prove nothing.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter ();
use File::Basename qw(dirname);
use MIME::Base64 qw(decode_base64);
use YAML::XS ();

our @ISA = ('Exporter');
our @EXPORT = qw(plist_parse schema_check schema_file schema_dir);

my $Root = dirname(dirname(abs_path(__FILE__)));
my %ByType;

sub schema_dir {
    my $d = $ENV{MDM_APPLE_SCHEMAS}
        // ($ENV{MDM_SHARED} // "$Root/../shared")
           . "/apple-device-management/mdm/commands";
    die "Apple's schemas are not in $d (set MDM_APPLE_SCHEMAS)\n"
        unless -f "$d/device.lock.yaml";
    return $d;
}

sub _index {
    return if %ByType;
    my $d = schema_dir();
    for my $f (glob "$d/*.yaml") {
        my $y = YAML::XS::LoadFile($f);
        my $rt = $y->{payload}{requesttype} or next;
        $ByType{$rt} = { file => $f, yaml => $y };
    }
}

sub schema_file { _index(); return ($ByType{ $_[0] } // {})->{file} }


# ---------------------------------------------------------------------------
# An XML plist as a typed tree
# ---------------------------------------------------------------------------

sub _unescape {
    my ($s) = @_;
    $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&quot;/"/g;
    $s =~ s/&apos;/'/g; $s =~ s/&amp;/&/g;
    return $s;
}

sub plist_parse {
    my ($xml) = @_;
    $xml =~ s/<\?xml[^>]*\?>//; $xml =~ s/<!DOCTYPE[^>]*>//;
    $xml =~ s{^\s*<plist[^>]*>}{}; $xml =~ s{</plist>\s*\z}{};
    my @tok;
    while ($xml =~ m{\G(?:\s*<(/?)(\w+)\s*(/?)>|([^<]+))}gc) {
        my ($close, $tag, $empty, $text) = ($1, $2, $3, $4);
        if (defined $tag) {
            push @tok, [ $close ? 'close' : $empty ? 'empty' : 'open', $tag ];
        } elsif ($text =~ /\S/ || ($tok[-1] && $tok[-1][0] eq 'open')) {
            # text between tags is layout, inside a value it is the value
            push @tok, [ 'text', $text ];
        }
    }
    my $i = 0;
    my $node = _node(\@tok, \$i);
    die "trailing plist content\n" if $i < @tok;
    return $node;
}

sub _text {
    my ($tok, $i, $tag) = @_;
    my $text = '';
    if ($tok->[$$i] && $tok->[$$i][0] eq 'text') { $text = $tok->[$$i++][1] }
    my $c = $tok->[$$i++];
    die "expected </$tag>\n" unless $c && $c->[0] eq 'close' && $c->[1] eq $tag;
    return _unescape($text);
}

sub _node {
    my ($tok, $i) = @_;
    my $t = $tok->[$$i++] or die "plist ends early\n";
    my ($kind, $tag) = @$t;
    if ($kind eq 'empty') {
        return { t => 'boolean', v => $tag eq 'true' ? 1 : 0 }
            if $tag eq 'true' || $tag eq 'false';
        return { t => 'dictionary', v => {}, order => [] } if $tag eq 'dict';
        return { t => 'array', v => [] } if $tag eq 'array';
        return { t => $tag, v => '' };
    }
    die "unexpected plist token @$t\n" unless $kind eq 'open';
    if ($tag eq 'dict') {
        my (%d, @order);
        while (1) {
            my $n = $tok->[$$i];
            if ($n->[0] eq 'close' && $n->[1] eq 'dict') { $$i++; last }
            die "expected <key>\n" unless $n->[0] eq 'open' && $n->[1] eq 'key';
            $$i++;
            my $k = _text($tok, $i, 'key');
            $d{$k} = _node($tok, $i);
            push @order, $k;
        }
        return { t => 'dictionary', v => \%d, order => \@order };
    }
    if ($tag eq 'array') {
        my @a;
        while (!($tok->[$$i][0] eq 'close' && $tok->[$$i][1] eq 'array')) {
            push @a, _node($tok, $i);
        }
        $$i++;
        return { t => 'array', v => \@a };
    }
    my $text = _text($tok, $i, $tag);
    return { t => 'data', v => decode_base64($text) } if $tag eq 'data';
    return { t => $tag, v => $text };
}


# ---------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------

sub schema_check {
    my ($root) = @_;
    _index();
    my $cmd = $root->{v}{Command};
    return ('no Command dictionary')
        unless $cmd && $cmd->{t} eq 'dictionary';
    my $rt = $cmd->{v}{RequestType};
    return ('no RequestType') unless $rt && $rt->{t} eq 'string';
    my $s = $ByType{ $rt->{v} } or return ("no schema for $rt->{v}");

    my %cmd = %{ $cmd->{v} };
    delete $cmd{RequestType};
    my @err;
    _dict({ t => 'dictionary', v => \%cmd }, $s->{yaml}{payloadkeys} // [],
          "$rt->{v}.Command", \@err);
    return @err;
}

my %Types = (
    '<string>' => 'string', '<integer>' => 'integer', '<boolean>' => 'boolean',
    '<real>' => 'real', '<data>' => 'data', '<date>' => 'date',
    '<array>' => 'array', '<dictionary>' => 'dictionary',
);

sub _dict {
    my ($node, $keys, $path, $err) = @_;
    # a dictionary of anything (Manifest, Configuration)
    return if @$keys == 1 && $keys->[0]{key} eq 'ANY';
    my %spec = map { $_->{key} => $_ } @$keys;
    for my $k (sort keys %{ $node->{v} }) {
        my $s = $spec{$k};
        if (!$s) { push @$err, "$path.$k: not a key of the schema"; next }
        _value($node->{v}{$k}, $s, "$path.$k", $err);
    }
    for my $s (@$keys) {
        push @$err, "$path.$s->{key}: required but missing"
            if ($s->{presence} // '') eq 'required' && !exists $node->{v}{ $s->{key} };
    }
}

sub _value {
    my ($node, $s, $path, $err) = @_;
    my $want = $s->{type} // '<any>';
    return if $want eq '<any>';
    my $t = $Types{$want} or do { push @$err, "$path: schema type $want?"; return };
    my $ok = $node->{t} eq $t || ($t eq 'real' && $node->{t} eq 'integer');
    if (!$ok) { push @$err, "$path: $node->{t}, the schema says $t"; return }
    if ($s->{rangelist} && $t ne 'array' && $t ne 'dictionary') {
        push @$err, "$path: '$node->{v}' is not in [@{ $s->{rangelist} }]"
            unless grep { "$_" eq "$node->{v}" } @{ $s->{rangelist} };
    }
    if ($t eq 'integer') {
        push @$err, "$path: '$node->{v}' is not an integer"
            unless $node->{v} =~ /^-?\d+\z/;
    }
    if ($t eq 'dictionary') {
        _dict($node, $s->{subkeys} // [], $path, $err) if $s->{subkeys};
    } elsif ($t eq 'array') {
        _array($node, $s->{subkeys} // [], $path, $err);
    }
}

sub _array {
    my ($node, $subs, $path, $err) = @_;
    return unless @$subs;
    my $i = 0;
    for my $e (@{ $node->{v} }) {
        my $p = $path . '[' . $i++ . ']';
        if (@$subs == 1) {
            my $s = $subs->[0];
            # the allowed strings, each as a subkey (DeviceInformation)
            if (($s->{type} // '') eq '<string>' && $s->{subkeys}) {
                if ($e->{t} ne 'string') { push @$err, "$p: $e->{t}, the schema says string"; next }
                push @$err, "$p: '$e->{v}' is not one of the schema's names"
                    unless grep { $_->{key} eq $e->{v} } @{ $s->{subkeys} };
                next;
            }
            _value($e, $s, $p, $err);
            next;
        }
        # several dictionaries: the one whose Item names this element
        my $item = $e->{t} eq 'dictionary' ? $e->{v}{Item} : undef;
        if (!$item) { push @$err, "$p: no Item to match a schema element by"; next }
        my ($s) = grep {
            my $it = (grep { $_->{key} eq 'Item' } @{ $_->{subkeys} // [] })[0];
            $it && grep { $_ eq $item->{v} } @{ $it->{rangelist} // [] }
        } @$subs;
        if (!$s) { push @$err, "$p: Item '$item->{v}' is not in the schema"; next }
        _value($e, $s, $p, $err);
    }
}

1;
