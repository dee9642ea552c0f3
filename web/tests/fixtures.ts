// Shared test data: one message of the contract's shape, overridable field by field.
import type { Message } from '@/api/types';

export const BOB = { id: '2', username: 'bob', display_name: null, avatar_url: null };

/** A message `id` by Bob in channel `c` of community `g`, content `m<id>`. */
export function message(id: number | string, extra: Partial<Message> = {}): Message {
  return {
    id: String(id),
    channel_id: 'c',
    community_id: 'g',
    author: BOB,
    content: `m${id}`,
    created_at: '2025-06-01T00:00:00Z',
    edited_at: null,
    reply_to_id: null,
    mentions: [],
    mention_roles: [],
    mention_everyone: false,
    attachments: [],
    embeds: [],
    reactions: [],
    pinned: false,
    nonce: null,
    ...extra,
  };
}
