import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { parseBlocks, parseInline, renderMarkdown, safeHref, toPlainText } from '@/lib/markdown';

const html = (src: string) =>
  renderToStaticMarkup(
    <div>
      {renderMarkdown(src, {
        userName: (id) => (id === '42' ? 'alice' : null),
        roleName: (id) => (id === '7' ? 'mods' : null),
        meId: '42',
      })}
    </div>,
  );

describe('markdown', () => {
  it('renders bold, italics, strike and inline code', () => {
    expect(html('**b** *i* _u_ ~~s~~ `c`')).toBe(
      '<div><p class="md-p"><strong>b</strong> <em>i</em> <em>u</em> <s>s</s> <code class="md-code">c</code></p></div>',
    );
  });

  it('nests emphasis', () => {
    expect(html('**bold *and italic***')).toContain('<strong>bold <em>and italic</em></strong>');
    expect(html('*it **bold** it*')).toContain('<em>it <strong>bold</strong> it</em>');
  });

  it('leaves unclosed and unbalanced markers as text', () => {
    expect(html('**unclosed')).toBe('<div><p class="md-p">**unclosed</p></div>');
    expect(html('a * b * c')).toBe('<div><p class="md-p">a * b * c</p></div>');
    expect(html('`no end')).toBe('<div><p class="md-p">`no end</p></div>');
    expect(html('snake_case_name')).toBe('<div><p class="md-p">snake_case_name</p></div>');
    expect(html('```\nnever closed')).toBe('<div><p class="md-p">```\nnever closed</p></div>');
  });

  it('code spans and blocks are literal', () => {
    expect(html('`**not bold** <b>`')).toContain('<code class="md-code">**not bold** &lt;b&gt;</code>');
    const out = html('```js\nconst a = "<script>";\n**x**\n```');
    expect(out).toContain('<pre class="md-pre" data-lang="js"><code>const a = &quot;&lt;script&gt;&quot;;\n**x**</code></pre>');
  });

  it('renders quotes', () => {
    expect(html('> quoted **text**\nafter')).toBe(
      '<div><blockquote class="md-quote"><p class="md-p">quoted <strong>text</strong></p></blockquote><p class="md-p">after</p></div>',
    );
  });

  it('links get rel=noopener noreferrer and target=_blank', () => {
    const out = html('see https://example.org/a_b?x=1. and [docs](https://example.com/d)');
    expect(out).toContain('<a href="https://example.org/a_b?x=1" target="_blank" rel="noopener noreferrer" title="https://example.org/a_b?x=1">https://example.org/a_b?x=1</a>.');
    expect(out).toContain('<a href="https://example.com/d" target="_blank" rel="noopener noreferrer" title="https://example.com/d">docs</a>');
    expect(html('mailto:me@example.org')).toContain('href="mailto:me@example.org"');
  });

  it('renders mentions as names', () => {
    expect(html('hi <@42> and <@&7> and <@99> @everyone')).toBe(
      '<div><p class="md-p">hi <span class="mention mention-me">@alice</span> and <span class="mention">@mods</span> and <span class="mention">@unknown-user</span> <span class="mention mention-me">@everyone</span></p></div>',
    );
    expect(toPlainText('hey <@42> **x**', { userName: () => 'alice', roleName: () => null })).toBe('hey @alice x');
  });

  describe('hostile input', () => {
    it('never produces HTML from text', () => {
      const out = html('<script>alert(1)</script><img src=x onerror=alert(1)>');
      expect(out).not.toContain('<script');
      expect(out).not.toContain('<img');
      expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    });

    it('refuses javascript:, data: and vbscript: links', () => {
      for (const src of [
        '[click](javascript:alert(1))',
        '[click](JaVaScRiPt:alert(1))',
        '[click](java\tscript:alert(1))',
        '[click](data:text/html;base64,PHNjcmlwdD4=)',
        '[click](vbscript:msgbox)',
        '<javascript:alert(1)>',
        'javascript:alert(1)',
        '[x](//evil.example/path)',
      ]) {
        const out = html(src);
        expect(out, src).not.toContain('<a ');
        expect(out, src).not.toMatch(/href=/);
      }
    });

    it('escapes attribute-breaking URLs', () => {
      const out = html('https://example.org/"onmouseover="alert(1)');
      expect(out).not.toContain('onmouseover="alert');
    });

    it('does not nest links inside link labels', () => {
      const out = html('[https://a.example](https://b.example)');
      expect(out.match(/<a /g)?.length).toBe(1);
    });

    it('survives deep nesting and long marker runs quickly', () => {
      const deep = '**_'.repeat(200) + 'x' + '_**'.repeat(200);
      const t0 = performance.now();
      const out = html(deep);
      expect(out).toContain('x');
      const runs = html('*'.repeat(5000) + '_'.repeat(5000) + '`'.repeat(3000));
      expect(runs.length).toBeGreaterThan(10_000);
      const gt = html('>'.repeat(100) + ' hi');
      expect(gt).toContain('hi');
      expect(performance.now() - t0).toBeLessThan(2000);
    });

    it('handles brackets without links and odd mentions', () => {
      expect(html('[not a link] (x)')).toBe('<div><p class="md-p">[not a link] (x)</p></div>');
      expect(html('<@abc> <@&> <@123456789012345678901234>')).not.toContain('mention');
    });
  });

  it('safeHref only accepts http, https and mailto', () => {
    expect(safeHref('https://x.org')).toBe('https://x.org/');
    expect(safeHref('http://x.org/a b')).toBe('http://x.org/a%20b');
    expect(safeHref('mailto:a@b.c')).toBe('mailto:a@b.c');
    expect(safeHref('javascript:alert(1)')).toBeNull();
    expect(safeHref(' \u0000javascript:alert(1)')).toBeNull();
    expect(safeHref('file:///etc/passwd')).toBeNull();
    expect(safeHref('/relative')).toBeNull();
  });

  it('parses into a small AST', () => {
    expect(parseInline('a **b**')).toEqual([
      { type: 'text', value: 'a ' },
      { type: 'bold', children: [{ type: 'text', value: 'b' }] },
    ]);
    expect(parseBlocks('x\n```\ny\n```').map((b) => b.type)).toEqual(['paragraph', 'codeblock']);
  });
});
